"""The hub's commands: `zoo list REPO`, `zoo help REPO ENTRY`, `zoo load REPO ENTRY`, `zoo trust`."""

from __future__ import annotations

import argparse
import ast
import inspect
import warnings
from typing import Any

from .. import hub
from .._common import redact
from ..errors import ZooError
from ..hub import api, trust
from ..hub.specs import parse_spec
from .command import Subcommands, add_command, emit

REPO_HELP = "a hub repo: a directory, owner/repo[:ref], gitlab:group/repo[:ref] or an archive URL"


def add_remote_options(p: argparse.ArgumentParser) -> None:
    """The options every command that reads a hub repo takes."""
    p.add_argument("--offline", action="store_true", help="use only the zoo cache (also: ZOO_OFFLINE=1)")
    p.add_argument("--force-reload", action="store_true", help="fetch the repo again even if it is cached")
    p.add_argument("--trust", action="store_true", help="trust the repo (and add it to the trusted list)")


def hub_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """zoo.load/list/help keyword arguments from the remote options."""
    return {
        "offline": True if args.offline else None,
        "force_reload": args.force_reload,
        "trust_repo": True if args.trust else "check",
        "verbose": False,
    }


def cmd_list_repo(args: argparse.Namespace) -> int:
    """`zoo list REPO`: the repo's entry points."""
    entries = hub.list(args.pattern, **hub_kwargs(args))
    emit(args, entries, "\n".join(entries) if entries else f"{shown(args.pattern)} has no entry points")
    return 0


# zoo.load's own keyword arguments: as --kwarg they would collide with hub_kwargs (a TypeError).
RESERVED_KWARGS = ("source", "force_reload", "trust_repo", "offline", "skip_validation", "verbose")
# zoo.load's (and torch.hub.load's) positional parameters: REPO and ENTRY fill them.
POSITIONAL_NAMES = ("repo_or_dir", "model")
# The longest --kwarg value read as a Python literal. ast.literal_eval parses before it evaluates, and the
# parser's memory and recursion grow with nesting: 60,000 characters of `-----1` end in MemoryError. A
# value this long is a path or a text, never a number or a small list, so it is taken as a string.
LITERAL_MAX = 1000


def shown(repo: str) -> str:
    """REPO as messages and output show it: parsed, without a URL's user:password, query or fragment."""
    try:
        with warnings.catch_warnings():  # the load itself warns about a folder named like owner/repo, once
            warnings.simplefilter("ignore")
            return parse_spec(repo).display
    except ZooError:
        return redact(repo)


def parse_kwarg(item: str) -> tuple[str, Any]:
    """`name=value` with value read as a Python literal (`3`, `True`, `'x'`, `[1, 2]`), else as a string."""
    name, eq, text = item.partition("=")
    if not eq or not name.isidentifier():
        raise ZooError(f"--kwarg {item!r}: expected NAME=VALUE")
    if name in RESERVED_KWARGS:
        raise ZooError(
            f"--kwarg {item!r}: {name} is an option of zoo load itself, not of the entry point "
            "(use --offline, --force-reload or --trust)"
        )
    if name in POSITIONAL_NAMES:
        which = "REPO" if name == "repo_or_dir" else "ENTRY"
        raise ZooError(
            f"--kwarg {item!r}: {name} is zoo.load's own {which} argument, so no entry point can receive it "
            "(as with torch.hub.load)"
        )
    if len(text) > LITERAL_MAX:
        return name, text
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = text
    return name, value


def summary(obj: Any) -> dict[str, Any]:
    """What `zoo load` reports about what an entry point built."""
    import torch  # only `zoo load` needs it

    kind = type(obj)
    data: dict[str, Any] = {"type": f"{kind.__module__}.{kind.__qualname__}"}
    if isinstance(obj, torch.nn.Module):
        params = list(obj.parameters())
        data["num_params"] = sum(p.numel() for p in params)
        data["trainable_params"] = sum(p.numel() for p in params if p.requires_grad)
    else:
        data["repr"] = repr(obj)[:500]
    return data


def cmd_load(args: argparse.Namespace) -> int:
    """`zoo load REPO ENTRY [--kwarg k=v ...]`: build it and print what it is."""
    kwargs = dict(parse_kwarg(item) for item in args.kwarg)
    options = hub_kwargs(args)
    repo_dir, fn = api.entry_point(
        args.repo,
        args.entry,
        trust_repo=options["trust_repo"],
        force_reload=options["force_reload"],
        verbose=options["verbose"],
        offline=options["offline"],
    )
    # Checked against the entry's signature before anything runs: a name it does not take is one line.
    api.check_arguments(args.entry, fn, (), kwargs)
    try:
        built = api.call_entry(repo_dir, fn, (), kwargs, offline=options["offline"])
    except TypeError as e:
        if not kwargs or isinstance(e, ZooError):
            raise
        # An entry that takes **kwargs passes them on (resnet18 to torchvision's ResNet), so only the
        # call can tell that one does not fit; with --kwarg given, that is the user's input, not a bug.
        given = ", ".join(kwargs)
        raise ZooError(f"entry point {args.entry} rejects --kwarg {given}: {redact(str(e))}") from None
    data = {"repo": shown(args.repo), "entry": args.entry, **summary(built)}
    if "num_params" in data:
        text = f"{data['type']}: {data['num_params']:,} parameters ({data['trainable_params']:,} trainable)"
    else:
        text = f"{data['type']}: {data['repr']}"
    emit(args, data, text)
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    """`zoo trust REPO`, `zoo trust --list`, `zoo trust --remove REPO`."""
    if args.list:
        data = {"trusted": trust.trusted(), "default_owners": list(trust.DEFAULT_OWNERS)}
        lines = [
            *data["trusted"],
            *(f"{owner}/* (torch.hub's default, on github.com only)" for owner in trust.DEFAULT_OWNERS),
        ]
        emit(args, data, "\n".join(lines))
        return 0
    target = args.remove or args.repo
    if not target:
        raise ZooError("name a repo (zoo trust OWNER/REPO), or use --list or --remove OWNER/REPO")
    if args.remove and trust.remove(target):
        # A line as `zoo trust --list` shows it, e.g. another server's `https://ghe.example/owner/repo`.
        line = redact(target)  # a hand-edited line may hold a URL with a secret in it
        emit(args, {"repo": line, "trusted": False}, f"removed {line} from the trusted list")
        return 0
    spec = parse_spec(target)
    if not spec.is_remote:
        raise ZooError(f"{spec.display} is a local directory; local repos are always trusted")
    key = spec.trust_key
    if args.remove:
        if not trust.remove(key):
            default = " (its owner is trusted by default)" if trust.trusted_by_default(key) else ""
            raise ZooError(f"{key} is not on the trusted list{default}")
        text = f"removed {key} from the trusted list"
    else:
        text = f"trusted {key}" if trust.add(key) else f"{key} was already trusted"
    emit(args, {"repo": key, "trusted": not args.remove}, text)
    return 0


def cmd_help(args: argparse.Namespace) -> int:
    """`zoo help REPO ENTRY`: the entry point's docstring, dedented (zoo.help returns it as written)."""
    raw = hub.help(args.repo, args.entry, **hub_kwargs(args))
    doc = inspect.cleandoc(raw) if raw else ""
    emit(
        args,
        {"repo": shown(args.repo), "entry": args.entry, "doc": doc},
        doc or f"{args.entry} has no docstring",
    )
    return 0


def register(sub: Subcommands) -> None:
    """Add `help`, `load` and `trust` (`list REPO` is `zoo list`'s, see zoo.cli.models)."""
    p = add_command(sub, "help", cmd_help, "show the docstring of a hub repo's entry point")
    p.add_argument("repo", help=REPO_HELP)
    p.add_argument("entry")
    add_remote_options(p)
    p = add_command(sub, "load", cmd_load, "build a hub repo's entry point and print a summary of it")
    p.add_argument("repo", help=REPO_HELP)
    p.add_argument("entry")
    p.add_argument(
        "--kwarg",
        "-k",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="keyword argument (repeatable)",
    )
    add_remote_options(p)
    p = add_command(sub, "trust", cmd_trust, "trust a remote hub repo, list trusted repos, or remove one")
    p.add_argument("repo", nargs="?", help="owner/repo, gitlab:group/repo or an archive URL")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="show the trusted list")
    group.add_argument("--remove", metavar="REPO", help="take a repo off the trusted list")
