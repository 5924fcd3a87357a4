"""`zoo.list`, `zoo.help` and `zoo.load`: torch.hub's calls on any hub repo, local or remote.

A spec is parsed (specs), a remote repo is checked for trust (trust) and taken from its snapshot by commit
(snapshots, which fetch and extract it once), then its hubconf is imported apart from other repos (hubconf).

The three take torch.hub's parameters in torch.hub's order, positionally or by torch.hub's names (`github`,
`model`), plus zoo's own keyword-only ones (`source` for list/help, `offline`); zoo's earlier names
(`repo_or_dir=` for list/help, `entry=`) still work where torch.hub's name is not given. Their errors are
also instances of what torch.hub raises for the same mistake (RuntimeError, ValueError, FileNotFoundError).
"""

from __future__ import annotations

import builtins
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import HubconfNotFoundError, InvalidArgumentError, UnknownEntryPointError, unknown
from ..store.download import offline_mode
from . import snapshots
from .hubconf import HUBCONF, entry_points, import_hubconf, isolated
from .specs import parse_spec
from .trust import check_trust


def resolve_repo(
    repo_or_dir: str | Path,
    *,
    source: str | None = None,
    force_reload: bool = False,
    trust_repo: Any = None,
    offline: bool | None = None,
    verbose: bool = False,
) -> Path:
    """The local folder that holds the repo's `hubconf.py`: the directory itself, or a cached snapshot.

    A remote repo is checked for trust first (see zoo.hub.trust), then taken from the cache or fetched.
    """
    spec = parse_spec(repo_or_dir, source)
    if spec.is_remote:
        check_trust(spec, trust_repo)
        return snapshots.snapshot(spec, force_reload=force_reload, offline=offline, verbose=verbose)
    path = spec.local
    if not path.is_dir():
        raise HubconfNotFoundError(f"{str(repo_or_dir)!r} is not a directory holding a {HUBCONF}")
    if not (path / HUBCONF).is_file():
        raise HubconfNotFoundError(f"no {HUBCONF} in {path}")
    return path.resolve()


def _entry(module: ModuleType, name: Any, repo_dir: Path) -> Any:
    if not isinstance(name, str):
        # torch.hub: ValueError("Invalid input: model should be a string of function name")
        raise InvalidArgumentError(f"the entry point must be the name of a function, not {name!r:.80}")
    names = entry_points(module)
    if name not in names:
        # torch.hub: RuntimeError("Cannot find callable {model} in hubconf"); UnknownEntryPointError is both.
        message = str(unknown("entry point", name, names, where=f" in {repo_dir / HUBCONF}"))
        raise UnknownEntryPointError(message)
    return getattr(module, name)


def _open(
    repo_or_dir: str | Path,
    source: str | None,
    force_reload: bool,
    trust_repo: Any,
    offline: bool | None,
    verbose: bool,
) -> tuple[Path, ModuleType]:
    repo_dir = resolve_repo(
        repo_or_dir,
        source=source,
        force_reload=force_reload,
        trust_repo=trust_repo,
        offline=offline,
        verbose=verbose,
    )
    return repo_dir, import_hubconf(repo_dir, force_reload=force_reload)


def _old_names(**old_to_new: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Accept zoo's earlier keyword names (`repo_or_dir=`, `entry=`) for torch.hub's (`github=`, `model=`).

    An old name stands for the new one only when the new one is not given (by position or by name): with it,
    `entry=` in `load(repo, "net", entry=...)` is the entry point's own keyword argument, as in torch.hub, and
    in list/help it is an unexpected keyword (TypeError).
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        params = builtins.list(inspect.signature(fn).parameters)

        @functools.wraps(fn)  # inspect.signature shows fn's: torch.hub's parameters
        def call(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs and new not in kwargs and len(args) <= params.index(new):
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return call

    return wrap


@_old_names(repo_or_dir="github")
def list(
    github: str | Path,
    force_reload: bool = False,
    skip_validation: bool = False,
    trust_repo: Any = None,
    verbose: bool = True,
    *,
    source: str | None = None,
    offline: bool | None = None,
) -> builtins.list[str]:
    """The entry points of a hub repo (its hubconf's public callables), sorted: torch.hub.list.

    `github` is any hub spec (a folder, `owner/repo[:ref]`, `gitlab:...`, an archive URL); `source` forces how
    it is read. `skip_validation` is accepted and changes nothing (zoo makes no GitHub API call to skip).
    """
    _, module = _open(github, source, force_reload, trust_repo, offline, verbose)
    return entry_points(module)


@_old_names(repo_or_dir="github", entry="model")
def help(
    github: str | Path,
    model: str,
    force_reload: bool = False,
    skip_validation: bool = False,
    trust_repo: Any = None,
    *,
    source: str | None = None,
    offline: bool | None = None,
    verbose: bool = True,
) -> str | None:
    """The docstring of entry point `model` of a hub repo: torch.hub.help.

    As torch.hub, it is the entry's `__doc__` as written (indented, None when there is none); `zoo help`
    shows it dedented.
    """
    repo_dir, module = _open(github, source, force_reload, trust_repo, offline, verbose)
    return _entry(module, model, repo_dir).__doc__


@_old_names(entry="model")
def load(
    repo_or_dir: str | Path,
    model: str,
    *args: Any,
    source: str | None = None,
    trust_repo: Any = None,
    force_reload: bool = False,
    verbose: bool = True,
    skip_validation: bool = False,
    offline: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Call entry point `model` of a hub repo with `*args, **kwargs` and return what it returns: torch.hub.load.

    `source=None` (zoo's default) reads `repo_or_dir` as a folder if it is one, else as a remote spec;
    "github", "gitlab", "local" and "url" (in any case) force one reading.
    """
    repo_dir, fn = entry_point(
        repo_or_dir,
        model,
        source=source,
        trust_repo=trust_repo,
        force_reload=force_reload,
        verbose=verbose,
        offline=offline,
    )
    return call_entry(repo_dir, fn, args, kwargs, offline=offline)


def entry_point(
    repo_or_dir: str | Path,
    model: str,
    *,
    source: str | None = None,
    trust_repo: Any = None,
    force_reload: bool = False,
    verbose: bool = True,
    offline: bool | None = None,
) -> tuple[Path, Callable[..., Any]]:
    """The repo's folder and its entry point `model`, not called yet (the first half of `load`)."""
    repo_dir, module = _open(repo_or_dir, source, force_reload, trust_repo, offline, verbose)
    return repo_dir, _entry(module, model, repo_dir)


def call_entry(
    repo_dir: Path,
    fn: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    offline: bool | None = None,
) -> Any:
    """Call an entry point of the repo at `repo_dir` as `load` does: its modules isolated, offline mode
    holding for what it resolves (the second half of `load`)."""
    # offline=True also holds for the weights the entry point resolves (zoo's own builders).
    with isolated(repo_dir), offline_mode(offline):
        return fn(*args, **(kwargs or {}))


def check_arguments(name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """InvalidArgumentError when entry point `name` cannot take `*args, **kwargs` by its signature (a name it
    has no parameter for, a missing required one), saying which names it takes; nothing when its signature
    cannot be read or has `**kwargs` (then only the call can tell).

    `load` does not call it: as torch.hub.load, it lets the entry point raise its own TypeError. The CLI
    does, so that `zoo load ... -k bogus=1` is one line rather than a traceback.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C callable without a readable signature
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        takes = [p.name for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        unknown_names = [k for k in kwargs if k not in sig.parameters]
        if unknown_names and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            what = f"does not take {', '.join(unknown_names)}"
        else:
            what = f"cannot be called so: {e}"
        raise InvalidArgumentError(
            f"entry point {name} {what} (takes: {', '.join(takes) or 'no arguments'})"
        ) from None
