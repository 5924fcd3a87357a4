"""`zoo check DIR`: review a hub repo as a maintainer would, before others load it."""

from __future__ import annotations

import contextlib
import inspect
import socket
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import ZooError
from ..store import integrity
from ..store.download import offline_mode
from ..weights import manifest
from . import hubconf

_NETWORK_USED = "network access refused by zoo check"


class _NetworkUsed(OSError):
    pass


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Within the block, any attempt to open a network connection fails (and is reported as such)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise _NetworkUsed(_NETWORK_USED)

    with contextlib.ExitStack() as stack:
        for target, attr in (
            (socket.socket, "connect"),
            (socket.socket, "connect_ex"),
            (socket.socket, "sendto"),
            (socket, "create_connection"),
            (socket, "getaddrinfo"),  # DNS lookups
        ):
            original = getattr(target, attr)
            setattr(target, attr, refuse)
            stack.callback(setattr, target, attr, original)
        yield


def check_repo(repo: str | Path, *, strict: bool = False) -> list[str]:
    """Problems found in the hub repo at `repo`, one line each (empty when it passes).

    Entries that are downloaded from their URL may carry only the hash prefix their upstream publishes
    (torchvision's file names); they pass unless `strict`. Bundled files always need a full hash and size.
    """
    repo = Path(repo).resolve()
    if not (repo / hubconf.HUBCONF).is_file():
        return [f"{repo}: no {hubconf.HUBCONF}"]
    problems: list[str] = []
    try:
        deps = hubconf.declared_dependencies(repo)
    except ZooError as e:
        return [str(e)]
    if not deps:
        problems.append(
            f"{hubconf.HUBCONF}: no `dependencies = [...]` list (torch.hub users read it to install)"
        )
    try:
        hubconf.check_dependencies(repo)
    except ZooError as e:
        problems.append(str(e))
        return problems
    try:
        with no_network(), offline_mode(True):
            module = hubconf.import_hubconf(repo, force_reload=True)
    except ZooError as e:
        # urllib and requests wrap the refusal in their own errors: look for its message.
        reason = "it opens a network connection" if _NETWORK_USED in str(e) else str(e)
        return [*problems, f"{hubconf.HUBCONF} does not import without network: {reason}"]
    for name in hubconf.entry_points(module):
        problems.extend(_check_entry(repo, name, getattr(module, name)))
    problems.extend(_check_manifest(repo, strict))
    return problems


def _check_entry(repo: Path, name: str, fn: object) -> list[str]:
    where = f"{hubconf.HUBCONF}: {name}"
    if inspect.isclass(fn) or getattr(fn, "__module__", "").split(".")[0] in (
        "typing",
        "builtins",
        "pathlib",
    ):
        return [
            f"{where} is a public helper, not an entry point: import it inside a function or name it _{name}"
        ]
    problems = []
    if not (inspect.getdoc(fn) or "").strip():
        problems.append(f"{where} has no docstring (it is what `zoo help` and torch.hub.help show)")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_pretrained = "pretrained" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    if not takes_pretrained:
        return [*problems, f"{where} does not take `pretrained` (torch.hub entry points do)"]
    try:
        with no_network(), offline_mode(True), hubconf.isolated(repo):
            built = fn(pretrained=False)
    except Exception as e:
        if _NETWORK_USED in str(e):
            return [*problems, f"{where}(pretrained=False) opens a network connection"]
        return [*problems, f"{where}(pretrained=False) fails: {type(e).__name__}: {e}"]
    if not isinstance(built, torch.nn.Module):
        problems.append(
            f"{where}(pretrained=False) returns {type(built).__name__}, not a model: a public helper? name it _{name}"
        )
    return problems


# Where a repo's bundled files are: `weights/` (what `zoo publish --repo` writes), or the package data of
# a repo that ships zoo itself.
BUNDLED_DIRS = ("weights", "zoo/weights/data")


def _bundled(repo: Path, file_name: str) -> Path:
    places = [repo / d / file_name for d in BUNDLED_DIRS]
    return next((p for p in places if p.is_file()), places[0])


def _check_manifest(repo: Path, strict: bool) -> list[str]:
    path = repo / "weights_manifest.json"
    if not path.is_file():
        return []
    try:
        raw = manifest.read_raw(path)
    except ZooError as e:
        return [str(e)]
    problems = []
    for key, entry in sorted(raw["weights"].items()):
        where = f"weights_manifest.json: {key}"
        sha, size = entry.get("sha256"), entry.get("size")
        bundled = _bundled(repo, str(entry.get("file_name", "")))
        upstream_prefix = entry.get("urls") and sha and not bundled.is_file()
        if upstream_prefix and not strict:
            continue
        if not sha or len(str(sha)) != 64:
            problems.append(f"{where} has no full sha256")
        if not isinstance(size, int):
            problems.append(f"{where} has no size")
        if not bundled.is_file():
            if not entry.get("urls"):
                problems.append(
                    f"{where}: weights/{entry.get('file_name')} is missing and the entry has no URL"
                )
            continue
        if isinstance(size, int) and bundled.stat().st_size != size:
            problems.append(
                f"{where}: {bundled.relative_to(repo)} is {bundled.stat().st_size} bytes, the entry says {size}"
            )
        elif sha and not integrity.matches(str(sha), integrity.digest(bundled, rehash=True)):
            problems.append(f"{where}: {bundled.relative_to(repo)} does not match its sha256")
    return problems
