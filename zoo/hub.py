"""`zoo.list`, `zoo.help` and `zoo.load` on hub repositories (a folder with a `hubconf.py`).

Every hubconf is imported under a module name of its own, with its folder on `sys.path` only while it
imports and while an entry point runs, so two repos that both ship a `models` package do not see each
other's code.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import HubError, MissingDependenciesError, unknown

HUBCONF = "hubconf.py"


def resolve_repo(
    repo_or_dir: str | Path,
    *,
    source: str | None = None,
    force_reload: bool = False,
    trust_repo: Any = None,
    offline: bool | None = None,
) -> Path:
    """The local folder that holds the repo's `hubconf.py`."""
    path = Path(repo_or_dir).expanduser()
    if source not in (None, "local"):
        raise HubError(f"source={source!r} is not supported yet; use a local directory (source='local')")
    if not path.is_dir():
        raise HubError(
            f"{str(repo_or_dir)!r} is not a directory holding a {HUBCONF} (remote repos are not supported yet)"
        )
    if not (path / HUBCONF).is_file():
        raise HubError(f"no {HUBCONF} in {path}")
    return path.resolve()


def declared_dependencies(repo_dir: Path) -> list[str]:
    """The hubconf's `dependencies = [...]`, read without running the file."""
    tree = ast.parse((repo_dir / HUBCONF).read_text(), filename=str(repo_dir / HUBCONF))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "dependencies" for t in node.targets
        ):
            try:
                return builtins.list(ast.literal_eval(node.value))
            except ValueError:
                raise HubError(
                    f"{repo_dir / HUBCONF}: `dependencies` must be a literal list of module names"
                ) from None
    return []


def check_dependencies(repo_dir: Path) -> None:
    """Fail with one message naming every declared dependency that is not importable."""
    missing = [name for name in declared_dependencies(repo_dir) if not _importable(name)]
    if missing:
        raise MissingDependenciesError(
            f"missing dependencies for {repo_dir}: {', '.join(missing)} (pip install {' '.join(missing)})"
        )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _own_names(repo_dir: Path) -> set[str]:
    names = set()
    for p in repo_dir.iterdir():
        if p.name.startswith((".", "_")) or p.name == HUBCONF:
            continue
        if p.is_dir() or p.suffix == ".py":
            names.add(p.stem)
    return names


def _is_under(module: ModuleType | None, repo_dir: Path) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and Path(file).resolve().is_relative_to(repo_dir)


@contextlib.contextmanager
def isolated(repo_dir: Path) -> Iterator[None]:
    """Put `repo_dir` first on `sys.path`, hiding same-named modules of other repos; undo it afterwards."""
    own = _own_names(repo_dir)
    loaded_before = set(sys.modules)
    shadowed = {
        name: sys.modules.pop(name)
        for name in builtins.list(sys.modules)
        if name.partition(".")[0] in own and not _is_under(sys.modules[name], repo_dir)
    }
    tops_before = {n.partition(".")[0] for n in loaded_before if n not in shadowed}
    saved_path = builtins.list(sys.path)
    sys.path.insert(0, str(repo_dir))
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - loaded_before:
            if name.partition(".")[0] in own - tops_before:
                del sys.modules[name]
        sys.modules.update(shadowed)


def import_hubconf(repo_dir: Path) -> ModuleType:
    """Import `repo_dir/hubconf.py` under a module name unique to that folder."""
    check_dependencies(repo_dir)
    name = "zoo_hubconf_" + hashlib.sha1(str(repo_dir).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, repo_dir / HUBCONF)
    module = importlib.util.module_from_spec(spec)
    with isolated(repo_dir):
        try:
            spec.loader.exec_module(module)
        except ModuleNotFoundError as e:
            raise HubError(f"{repo_dir / HUBCONF} failed to import: {e}") from e
    return module


def entry_points(module: ModuleType) -> builtins.list[str]:
    """The public callables of a hubconf module, as torch.hub lists them."""
    return [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]


def _entry(module: ModuleType, name: str, repo_dir: Path) -> Any:
    if name not in entry_points(module):
        raise unknown("entry point", name, entry_points(module), where=f" in {repo_dir / HUBCONF}")
    return getattr(module, name)


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
    repo_dir = resolve_repo(
        repo_or_dir, source=source, force_reload=force_reload, trust_repo=trust_repo, offline=offline
    )
    return entry_points(import_hubconf(repo_dir))


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
    repo_dir = resolve_repo(
        repo_or_dir, source=source, force_reload=force_reload, trust_repo=trust_repo, offline=offline
    )
    return inspect.getdoc(_entry(import_hubconf(repo_dir), entry, repo_dir)) or ""


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
    repo_dir = resolve_repo(
        repo_or_dir, source=source, force_reload=force_reload, trust_repo=trust_repo, offline=offline
    )
    module = import_hubconf(repo_dir)
    fn = _entry(module, entry, repo_dir)
    with isolated(repo_dir):
        return fn(*args, **kwargs)
