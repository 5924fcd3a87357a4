"""`zoo.list`, `zoo.help` and `zoo.load`: torch.hub's calls on any hub repo, local or remote.

A spec is parsed (specs), a remote repo is checked for trust (trust) and taken from its snapshot by commit
(snapshots, which fetch and extract it once), then its hubconf is imported apart from other repos (hubconf).
"""

from __future__ import annotations

import builtins
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import HubError, unknown
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
        raise HubError(f"{str(repo_or_dir)!r} is not a directory holding a {HUBCONF}")
    if not (path / HUBCONF).is_file():
        raise HubError(f"no {HUBCONF} in {path}")
    return path.resolve()


def _entry(module: ModuleType, name: str, repo_dir: Path) -> Any:
    if name not in entry_points(module):
        raise unknown("entry point", name, entry_points(module), where=f" in {repo_dir / HUBCONF}")
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


def list(
    repo_or_dir: str | Path,
    *,
    source: str | None = None,
    force_reload: bool = False,
    trust_repo: Any = None,
    offline: bool | None = None,
    skip_validation: bool = False,
    verbose: bool = True,
) -> builtins.list[str]:
    """The entry points of a hub repo (its hubconf's public callables), sorted."""
    _, module = _open(repo_or_dir, source, force_reload, trust_repo, offline, verbose)
    return entry_points(module)


def help(
    repo_or_dir: str | Path,
    entry: str,
    *,
    source: str | None = None,
    force_reload: bool = False,
    trust_repo: Any = None,
    offline: bool | None = None,
    skip_validation: bool = False,
    verbose: bool = True,
) -> str:
    """The docstring of entry point `entry` of a hub repo."""
    repo_dir, module = _open(repo_or_dir, source, force_reload, trust_repo, offline, verbose)
    return inspect.getdoc(_entry(module, entry, repo_dir)) or ""


def load(
    repo_or_dir: str | Path,
    entry: str,
    *args: Any,
    source: str | None = None,
    force_reload: bool = False,
    trust_repo: Any = None,
    offline: bool | None = None,
    skip_validation: bool = False,
    verbose: bool = True,
    **kwargs: Any,
) -> Any:
    """Call entry point `entry` of a hub repo with `*args, **kwargs` and return what it returns."""
    repo_dir, module = _open(repo_or_dir, source, force_reload, trust_repo, offline, verbose)
    fn = _entry(module, entry, repo_dir)
    # offline=True also holds for the weights the entry point resolves (zoo's own builders).
    with isolated(repo_dir), offline_mode(offline):
        return fn(*args, **kwargs)
