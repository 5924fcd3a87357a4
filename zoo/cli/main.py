"""The `zoo` command line. Exit status: 0 ok, 1 user error (one line on stderr), 2 usage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import cli_cache, cli_publish, cli_tasks, hub, hub_cli, manifest, registry, weights
from .errors import ZooError
from .hub_specs import looks_like_spec
from .manifest import Weights

Command = Callable[[argparse.Namespace], int]


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)


def _weights_info(w: Weights, default: str | None) -> dict[str, Any]:
    local = weights.find_local(w)
    return {
        "key": w.key,
        "default": w.key == default,
        "file_name": w.file_name,
        "urls": list(w.urls),
        "sha256": w.sha256,
        "sha256_is_prefix": w.sha256_is_prefix,
        "size": w.size,
        "num_params": w.meta.get("num_params"),
        "metrics": w.meta.get("metrics", {}),
        "num_categories": len(w.categories) if w.categories else None,
        "cached": str(local) if local else None,
    }


def cmd_list(args: argparse.Namespace) -> int:
    if args.pattern and looks_like_spec(args.pattern):
        return hub_cli.cmd_list_repo(args)
    m = manifest.load()
    names = registry.list_models(args.pattern)
    if args.pattern and not names:
        raise ZooError(f"no model matches {args.pattern!r}; `zoo list` shows them all")
    data = [
        {
            "name": n,
            "aliases": registry.aliases_of(n),
            "default_weights": m.defaults.get(n),
            "weights": [w.key for w in m.for_arch(n)],
        }
        for n in names
    ]
    rows = [
        [d["name"], d["default_weights"] or "-", str(len(d["weights"])), ", ".join(d["aliases"])]
        for d in data
    ]
    _emit(args, data, _table(rows, ["model", "default weights", "weights", "aliases"]))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    name = registry.canonical_name(args.model)
    m = manifest.load()
    default = m.defaults.get(name)
    builder = registry.get_builder(name)
    doc = (builder.__doc__ or "").strip().splitlines()
    data = {
        "name": name,
        "aliases": registry.aliases_of(name),
        "summary": doc[0] if doc else "",
        "default_weights": default,
        "weights": [_weights_info(w, default) for w in m.for_arch(name)],
    }
    lines = [f"{name}: {data['summary']}"]
    if data["aliases"]:
        lines.append(f"aliases: {', '.join(data['aliases'])}")
    rows = []
    for w in data["weights"]:
        top1 = next((v.get("acc@1") for v in w["metrics"].values()), None)
        rows.append(
            [
                w["key"] + (" *" if w["default"] else ""),
                w["file_name"],
                f"{w['size'] / 1e6:.1f} MB" if w["size"] else "?",
                f"{top1:.2f}" if top1 is not None else "-",
                "yes" if w["cached"] else "no",
            ]
        )
    lines.append(
        _table(rows, ["weights (* default)", "file", "size", "acc@1", "cached"])
        if rows
        else "no pretrained weights"
    )
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_help(args: argparse.Namespace) -> int:
    doc = hub.help(args.repo, args.entry, **hub_cli.hub_kwargs(args))
    _emit(args, {"repo": args.repo, "entry": args.entry, "doc": doc}, doc or f"{args.entry} has no docstring")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo", description="A pretrained-model zoo and hub registry for PyTorch."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=fn)
        return p

    p = add(
        "list",
        cmd_list,
        "list the zoo's models (optionally filtered, like 'resnet*'), or a hub repo's entry points",
    )
    p.add_argument("pattern", nargs="?", help="a pattern like 'resnet*', or a hub repo")
    hub_cli.add_remote_options(p)
    p = add("info", cmd_info, "show a model's weights, metrics and cache state")
    p.add_argument("model")
    p = add("help", cmd_help, "show the docstring of a hub repo's entry point")
    p.add_argument("repo", help=hub_cli.REPO_HELP)
    p.add_argument("entry")
    hub_cli.add_remote_options(p)
    cli_cache.register(sub, _emit, _table)
    cli_tasks.register(sub)
    cli_publish.register(sub)
    hub_cli.add_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; expected errors become one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ZooError as e:
        print(f"zoo: error: {e}", file=sys.stderr)
        if getattr(args, "json", False):  # scripts reading stdout still get JSON
            print(json.dumps({"error": str(e)}))
        return 1
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
