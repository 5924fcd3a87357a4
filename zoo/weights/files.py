"""A manifest entry to a verified local weight file, and that file to a state dict.

Order: the zoo cache; files bundled with the repo or package; torch's hub cache; `ZOO_WEIGHTS_MIRROR`
(`{mirror}/{file_name}`, an http(s) or file URL or a folder); then each URL of the entry. Every file is
checked against the entry's sha256 before it is used; a bad file in the zoo cache is deleted, one found
elsewhere is passed over.
"""

from __future__ import annotations

import contextlib
import os
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DownloadError, IntegrityError, WeightsNotFoundError
from ..store import integrity, paths
from ..store.download import download, is_offline, is_remote, lock_for
from .manifest import Weights

if TYPE_CHECKING:  # torch loads only when a state dict is read, not for `zoo cache ls`
    from .serialization import StateDict


def bundled_dir() -> Path:
    """The weight files that ship inside the package (`zoo/weights/data/`)."""
    return Path(str(resources.files(__package__) / "data"))


def candidates(w: Weights) -> list[Path]:
    """Every local place the file of `w` may already be, in the order they are tried."""
    dirs = [paths.weights_dir(), bundled_dir(), paths.torch_checkpoints_dir()]
    return [d / w.file_name for d in dirs]


def find_local(w: Weights) -> Path | None:
    """The first local copy of `w`'s file (not yet verified), or None."""
    return next((p for p in candidates(w) if p.is_file()), None)


def expected_sha256(w: Weights) -> str | None:
    """The hash `w`'s file must have: the manifest's, or the full one pinned by `zoo cache verify --pin`."""
    pinned = integrity.pins().get(w.key) if w.sha256_is_prefix else None
    if pinned and w.sha256 and pinned.startswith(w.sha256.lower()):
        return pinned
    return w.sha256


def mirror_url(w: Weights) -> str | None:
    """`{ZOO_WEIGHTS_MIRROR}/{file_name}` when a mirror is set."""
    mirror = os.environ.get("ZOO_WEIGHTS_MIRROR", "").strip()
    if not mirror:
        return None
    if "://" not in mirror:
        mirror = Path(mirror).expanduser().absolute().as_uri()
    return f"{mirror.rstrip('/')}/{w.file_name}"


def sources(w: Weights) -> list[str]:
    """The URLs `w`'s file may be fetched from, in order: the mirror, then the entry's own."""
    mirror = mirror_url(w)
    return [*([mirror] if mirror else []), *w.urls]


def verified_file(w: Weights, *, progress: bool | None = None, offline: bool | None = None) -> Path:
    """A verified local path to the file of `w`, fetching it into the zoo cache if needed."""
    expected = expected_sha256(w)
    tried: list[str] = []
    zoo_copy = paths.weights_dir() / w.file_name
    for path in candidates(w):
        if not path.is_file():
            continue
        try:
            integrity.check(path, expected, what=w.key)
        except IntegrityError as e:
            tried.append(_after_colon(e))
            if path == zoo_copy:
                discard_if_bad(path, expected)
            continue
        touch(path)
        return path
    offline = is_offline(offline)
    skipped = []
    mismatch = bool(tried)
    for url in sources(w):
        if offline and is_remote(url):
            skipped.append(url)
            continue
        try:
            return download(
                url, zoo_copy, sha256=expected, progress=progress, size=w.size, offline=offline, label=w.key
            )
        except (DownloadError, IntegrityError) as e:
            tried.append(str(e))
            mismatch = mismatch or isinstance(e, IntegrityError)
    message = _not_found(w, expected, tried, skipped)
    raise IntegrityError(message) if mismatch else WeightsNotFoundError(message)


def discard_if_bad(path: Path, expected: str | None) -> bool:
    """Delete `path` if it does not have the `expected` sha256; True if it was deleted.

    Checked again under the file's lock, since another process may have just put a good copy there.
    """
    with lock_for(path):
        if path.is_file() and not integrity.matches(expected, integrity.digest(path)):
            integrity.forget(path)
            path.unlink()
            return True
    return False


def touch(path: Path) -> None:
    """Mark a zoo-cache file as used now (its atime), for `zoo cache ls` and least-recently-used pruning."""
    if path.parent != paths.weights_dir():
        return
    with contextlib.suppress(OSError):  # a read-only cache still serves files
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))


def _after_colon(e: Exception) -> str:
    text = str(e)
    return text.split(": ", 1)[1] if ": " in text else text


def _not_found(w: Weights, expected: str | None, tried: list[str], skipped: list[str]) -> str:
    looked = [str(p) for p in candidates(w)]
    lines = [f"weights {w.key}: no verified copy of {w.file_name} (sha256 {expected})"]
    lines.append("looked in: " + ", ".join(looked))
    if tried:
        lines.append("tried: " + "; ".join(tried))
    if skipped:
        lines.append(
            f"offline, so not downloaded from: {', '.join(skipped)}. On a machine with network run "
            f"`zoo fetch {w.key}` and copy {paths.weights_dir()} here, or set ZOO_WEIGHTS_MIRROR to a "
            f"folder or URL holding {w.file_name}"
        )
    elif not sources(w):
        lines.append(f"the entry has no URL: put {w.file_name} into {paths.weights_dir()}")
    return "\n".join(lines)


def load_state_dict(selected: Weights | Path, *, progress: bool = True) -> StateDict:
    """The state dict of manifest weights (verified first) or of a local file, loaded without running code.

    Files of the zoo's caches are memory-mapped (they are only ever replaced by renaming); a user's own file
    is read into memory, so saving a checkpoint over it later cannot pull the weights from under the model.
    """
    from . import serialization

    if isinstance(selected, Weights):
        # progress=True (torchvision's default) still shows a bar only on a terminal, never in logs.
        path = verified_file(selected, progress=None if progress else False)
        return serialization.load_state_dict(path, mmap=True)
    return serialization.load_state_dict(selected)
