"""sha256 checks of weight files, remembered so a warm load does not hash hundreds of megabytes again.

A file's digest is stored with its size, mtime and inode (in memory for the process, and as a small record in
the zoo home for later processes); a file whose size, mtime or inode changed is hashed again, so a replaced or
truncated file is always caught.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import warnings
from pathlib import Path

from filelock import FileLock

from .._common import write_text_atomic
from ..errors import IntegrityError
from . import paths

CHUNK = 1 << 20

_memo: dict[str, tuple[int, int, int, str]] = {}
_memo_lock = threading.Lock()
_warned_partial: set[str] = set()


def sha256_file(path: str | os.PathLike) -> str:
    """The full sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def matches(expected: str | None, actual: str) -> bool:
    """Whether `actual` (a full digest) is `expected` (a full digest or the prefix that is all we know)."""
    return expected is None or actual.startswith(expected.lower())


def _record_path(path: Path) -> Path:
    return paths.home() / "verified" / (hashlib.sha1(str(path).encode()).hexdigest() + ".json")


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


def remember(path: str | os.PathLike, digest: str) -> None:
    """Record that `path`, as it is now on disk, has sha256 `digest` (for this process and later ones)."""
    path = Path(path).absolute()
    st = path.stat()
    size, mtime_ns, ino = _stamp(st)
    with _memo_lock:
        _memo[str(path)] = (size, mtime_ns, ino, digest)
    record = _record_path(path)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(
            record,
            json.dumps({"path": str(path), "size": size, "mtime_ns": mtime_ns, "ino": ino, "sha256": digest}),
        )
    except OSError:
        # A read-only zoo home (a copied cache on a shared mount) still serves files; this process
        # remembers the digest in memory, later ones hash again.
        pass


def forget(path: str | os.PathLike) -> None:
    """Drop what is remembered about `path` (before deleting or replacing it)."""
    path = Path(path).absolute()
    with _memo_lock:
        _memo.pop(str(path), None)
    with contextlib.suppress(OSError):
        _record_path(path).unlink(missing_ok=True)


def known_digest(path: str | os.PathLike) -> str | None:
    """The remembered digest of `path` if the file is unchanged since it was hashed, else None."""
    path = Path(path).absolute()
    try:
        size, mtime_ns, ino = _stamp(path.stat())
    except OSError:
        return None
    with _memo_lock:
        hit = _memo.get(str(path))
    if hit is not None and hit[:3] == (size, mtime_ns, ino):
        return hit[3]
    try:
        record = json.loads(_record_path(path).read_text())
    except (OSError, ValueError):
        return None
    stamp = (record.get("size"), record.get("mtime_ns"), record.get("ino"))
    if record.get("path") == str(path) and stamp == (size, mtime_ns, ino):
        digest = str(record["sha256"])
        with _memo_lock:
            _memo[str(path)] = (size, mtime_ns, ino, digest)
        return digest
    return None


def digest(path: str | os.PathLike, *, rehash: bool = False) -> str:
    """The sha256 of `path`: remembered if the file is unchanged, else computed (and remembered)."""
    found = None if rehash else known_digest(path)
    if found is None:
        found = sha256_file(path)
        remember(path, found)
    return found


def check(path: str | os.PathLike, expected: str | None, *, what: str) -> str:
    """Verify `path` against `expected`; return its full digest or raise IntegrityError."""
    actual = digest(path)
    if not matches(expected, actual):
        raise IntegrityError(f"{what}: {path} has sha256 {actual}, expected {expected}")
    warn_if_partial(what, expected)
    return actual


def warn_if_partial(what: str, expected: str | None) -> None:
    """Warn once per process that `what` is only checked against a hash prefix."""
    if expected is None or len(expected) == 64:
        return
    with _memo_lock:
        if what in _warned_partial:
            return
        _warned_partial.add(what)
    warnings.warn(
        f"{what}: only the sha256 prefix {expected!r} is known, so verification is partial; "
        "`zoo cache verify --pin` records the full hash of the file you have",
        stacklevel=3,
    )


def _pins_path() -> Path:
    return paths.home() / "pins.json"


def pins() -> dict[str, str]:
    """Full sha256s recorded by `zoo cache verify --pin` for entries whose manifest knows only a prefix."""
    try:
        data = json.loads(_pins_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def pin(key: str, full_digest: str) -> None:
    """Record the full sha256 of `key`'s file, so later checks of it are full ones."""
    path = _pins_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        data = pins()
        data[key] = full_digest
        write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
