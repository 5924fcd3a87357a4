"""Importing a hub repo's `hubconf.py`: dependencies checked first, the repo's modules kept apart.

Every hubconf is imported under a module name of its own, with its folder on `sys.path` only while it
imports and while an entry point runs, so two repos that both ship a `models` package do not see each
other's code. Threads share `sys.modules`, so entry points (and hubconf imports) of repos that have modules
of their own run one at a time per process, under a re-entrant lock; an entry point must not wait on another
thread that loads a hub repo (it would wait forever).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import hashlib
import importlib.util
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from .._common import redact
from ..errors import HubError, MissingDependenciesError

HUBCONF = "hubconf.py"
# Module names whose distribution on the package index has another name: `pip install zoo` installs an
# unrelated project, and PIL comes from pillow.
DISTRIBUTIONS = {
    "zoo": "zoo-hub",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "cv2": "opencv-python",
    "sklearn": "scikit-learn",
}


def declared_dependencies(repo_dir: Path) -> builtins.list[str]:
    """The hubconf's `dependencies = [...]`, read without running the file ([] when there is none).

    A `dependencies` that is not a literal list (`['torch'] + extra`) raises HubError here, for linting;
    loading reads such a list from the imported module instead, as torch.hub does.
    """
    found = _literal_dependencies(repo_dir)
    if found is None:
        raise HubError(
            f"{repo_dir / HUBCONF}: `dependencies` is not a literal list of module names, so it cannot be "
            "checked before the hubconf runs"
        )
    return found


def _bindings(tree: ast.Module) -> Iterator[ast.AST]:
    # Statements that may bind the module-level name `dependencies`, also under if/try/with; function and
    # class bodies have their own names.
    stack: builtins.list[ast.AST] = builtins.list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if (
            isinstance(node, ast.Name)
            and node.id == "dependencies"
            and isinstance(node.ctx, ast.Store | ast.Del)
        ):
            yield node
        elif isinstance(node, ast.alias) and (node.asname or node.name.partition(".")[0]) == "dependencies":
            yield node  # `from .deps import dependencies`
        stack.extend(ast.iter_child_nodes(node))


def _literal_dependencies(repo_dir: Path) -> builtins.list[str] | None:
    path = repo_dir / HUBCONF
    try:
        # Bytes, so that Python's own rules read the encoding (a coding cookie, else UTF-8) and a file that
        # is not text is a SyntaxError, not a UnicodeDecodeError.
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as e:
        raise HubError(f"{path}:{e.lineno or 0}: syntax error: {redact(e.msg)}") from None
    except OSError as e:  # a folder named hubconf.py, unreadable
        raise HubError(f"{path} cannot be read: {e.strerror or e}") from None
    except (RecursionError, MemoryError):
        raise HubError(f"{path} is nested too deeply to be read") from None
    stores = builtins.list(_bindings(tree))
    if not stores:
        return []
    simple = [
        node
        for node in tree.body
        if (isinstance(node, ast.Assign) and len(node.targets) == 1)
        or (isinstance(node, ast.AnnAssign) and node.value is not None)
    ]
    for node in simple:
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if not (isinstance(target, ast.Name) and target.id == "dependencies"):
            continue
        if len(stores) > 1:
            return None  # bound more than once (`+=`, a later reassignment): only the module knows
        try:
            value = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None  # an expression: read it from the module once imported
        return _dependency_list(value, path)
    return None  # bound some other way (a tuple target, under `if`): read it from the module


def _module_name(value: Any) -> bool:
    return isinstance(value, str) and all(part.isidentifier() for part in value.split("."))


def _dependency_list(value: Any, path: Path) -> builtins.list[str]:
    if not isinstance(value, builtins.list | tuple) or not all(_module_name(v) for v in value):
        # repr: a name may hold a newline or a URL; redact keeps a secret in it out of the message.
        raise HubError(
            f"{path}: `dependencies` must be a list of module names, not {redact(repr(value)):.80}"
        )
    return builtins.list(value)


def check_dependencies(repo_dir: Path) -> None:
    """Fail with one message naming every declared dependency that is not importable.

    A `dependencies` that is not a literal list is checked once the hubconf is imported (import_hubconf).
    """
    _check_missing(_literal_dependencies(repo_dir) or [], repo_dir)


def _check_missing(names: builtins.list[str], repo_dir: Path) -> None:
    missing = [name for name in names if not _importable(name)]
    if missing:
        raise MissingDependenciesError(
            f"missing dependencies for {repo_dir}: {', '.join(missing)} "
            f"(pip install {' '.join(DISTRIBUTIONS.get(m, m) for m in missing)})"
        )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:  # noqa: BLE001 (`a.b` imports the installed package `a`, which may fail any way)
        return False


def _own_names(repo_dir: Path) -> set[str]:
    names = set()
    for p in repo_dir.iterdir():
        if p.name.startswith((".", "_")) or p.name == HUBCONF:
            continue
        if p.is_dir() and p.name.isidentifier():
            names.add(p.name)
        elif p.suffix == ".py" and p.stem.isidentifier():
            names.add(p.stem)
    return names


def _is_under(module: ModuleType | None, repo_dir: Path) -> bool:
    places = [getattr(module, "__file__", None), *getattr(module, "__path__", ())]
    return any(p and Path(p).resolve().is_relative_to(repo_dir) for p in places)


# Modules each repo imported from its own folder, kept so that later loads (and imports its code makes
# after `load` returns) find the same modules, and put back when another repo's same-named ones were in use.
_REPO_MODULES: dict[Path, dict[str, ModuleType]] = {}
_HUBCONFS: dict[Path, tuple[tuple[int, int], ModuleType]] = {}
_LOCK = threading.RLock()


@contextlib.contextmanager
def isolated(repo_dir: Path) -> Iterator[None]:
    """Make `repo_dir`'s own modules the importable ones while the block runs.

    The folder goes first on `sys.path`; same-named modules of other repos (or of the user) are set aside
    and put back afterwards. Without such a clash the repo's modules stay imported, as with torch.hub.
    `sys.modules` is shared by all threads, so a block of a repo with modules of its own holds a process-wide
    re-entrant lock: such blocks (entry points, hubconf imports) run one at a time, and one may open another
    in the same thread (an entry point that loads another hub repo).
    """
    own = _own_names(repo_dir)
    # Held across the caller's code, not just the bookkeeping: while one thread's `models` is in place,
    # another thread's entry point must not import (or set aside) its own `models`.
    with _LOCK if own else contextlib.nullcontext(), _isolate(repo_dir, own):
        yield


@contextlib.contextmanager
def _isolate(repo_dir: Path, own: set[str]) -> Iterator[None]:
    with _LOCK:
        # str.startswith with a tuple prefilters thousands of module names in C; the exact test follows.
        prefixes = tuple(own)
        shadowed = {
            name: sys.modules.pop(name)
            for name in [n for n in sys.modules if n.startswith(prefixes)]
            if name.partition(".")[0] in own and not _is_under(sys.modules[name], repo_dir)
        }
        tracked = _REPO_MODULES.setdefault(repo_dir, {})
        sys.modules.update(tracked)
        before = set(sys.modules)
        sys.path.insert(0, str(repo_dir))
    try:
        yield
    finally:
        with _LOCK:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(repo_dir))
            # Only modules a hub load imported are tracked: a repo that is also installed (zoo itself)
            # keeps the modules the process already had.
            tracked.update(
                (n, sys.modules[n])
                for n in set(sys.modules) - before
                if n.partition(".")[0] in own and _is_under(sys.modules[n], repo_dir)
            )
            if shadowed:
                for name in tracked:
                    sys.modules.pop(name, None)
                sys.modules.update(shadowed)


def _forget_modules(repo_dir: Path) -> None:
    # So that a reload also re-runs the repo's own modules, not just its hubconf.
    for name in _REPO_MODULES.pop(repo_dir, {}):
        sys.modules.pop(name, None)
    importlib.invalidate_caches()


def import_hubconf(repo_dir: Path, *, force_reload: bool = False) -> ModuleType:
    """Import `repo_dir/hubconf.py` under a module name unique to that folder (cached until it changes).

    A remote repo's folder is its snapshot, one per commit, so the name is unique to repo and commit.
    """
    # One import at a time, so that threads loading the same repo run its hubconf once.
    with _LOCK:
        return _import_hubconf(repo_dir, force_reload)


def _import_hubconf(repo_dir: Path, force_reload: bool) -> ModuleType:
    path = repo_dir / HUBCONF
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _HUBCONFS.get(repo_dir)
    if cached and cached[0] == stamp and not force_reload:
        return cached[1]
    declared = _literal_dependencies(repo_dir)
    if declared is not None:
        _check_missing(declared, repo_dir)  # before any of the repo's code runs
    if force_reload:
        _forget_modules(repo_dir)
    name = "zoo_hubconf_" + hashlib.sha1(str(repo_dir).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs, as a real import would be (dataclasses and pickling look it up there).
    sys.modules[name] = module
    with isolated(repo_dir):
        try:
            spec.loader.exec_module(module)
        except KeyboardInterrupt:
            del sys.modules[name]
            raise
        except BaseException as e:
            # SystemExit too: a hubconf that calls sys.exit() must not end the caller's program (`zoo list`
            # would exit 0, saying nothing).
            del sys.modules[name]
            raise HubError(f"{path} failed to import: {type(e).__name__}: {redact(str(e))}") from e
    if declared is None:
        # Not a literal: read as torch.hub reads it, still before any entry point runs.
        try:
            _check_missing(_dependency_list(getattr(module, "dependencies", None) or [], path), repo_dir)
        except HubError:
            del sys.modules[name]
            raise
    _HUBCONFS[repo_dir] = (stamp, module)
    return module


def entry_points(module: ModuleType) -> builtins.list[str]:
    """The public callables of a hubconf module, as torch.hub lists them."""
    return [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
