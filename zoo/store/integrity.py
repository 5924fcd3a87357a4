"""sha256 checks of weight files, remembered so a warm load does not hash hundreds of megabytes again.

A file's digest is stored with its size, mtime, ctime and inode (in memory for the process, and as a small
record in the zoo home for later processes); a file whose stamp changed is hashed again, so a replaced or
truncated file is always caught, and so is one rewritten in place with its mtime put back (the ctime moves).
A remembered digest is a cache of a hash, never evidence against a file: before a file is reported bad it is
hashed again, so a corrupted or planted record never makes zoo delete a good file. Records are read
defensively (no links followed, at most a few KiB, fields type-checked) and written by rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
import warnings
from pathlib import Path

from .._common import write_text_atomic
from ..errors import IntegrityError, StorageError
from . import locks, paths, small_files

CHUNK = 1 << 20
RECORD_MAX = 4096  # bytes: a record is about 250; anything bigger was not written by zoo
PINS_MAX = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Stamp = tuple[int, int, int, int]  # size, mtime_ns, inode, ctime_ns
_memo: dict[str, tuple[Stamp, str]] = {}
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
    return paths.home() / "verified" / (hashlib.sha1(os.fsencode(path)).hexdigest() + ".json")


def _stamp(st: os.stat_result) -> Stamp:
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def _read_small(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file of at most `limit` bytes, read without following a link (nor blocking on a
    FIFO planted in its place); None for anything else: a record is only ever a shortcut."""
    try:
        return small_files.read_small(path, limit=limit, what="a zoo record")
    except StorageError:
        return None


def _read_record(path: Path) -> tuple[Stamp, str] | None:
    data = _read_small(_record_path(path), RECORD_MAX)
    try:
        record = json.loads(data) if data is not None and len(data) <= RECORD_MAX else None
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("path") != str(path):
        return None
    stamp = tuple(record.get(k) for k in ("size", "mtime_ns", "ino", "ctime_ns"))
    digest = record.get("sha256")
    if not all(type(v) is int for v in stamp) or not isinstance(digest, str) or not _SHA256.match(digest):
        return None
    return stamp, digest  # type: ignore[return-value]


def _write_record(path: Path, stamp: Stamp, digest: str) -> None:
    record = _record_path(path)
    folder = record.parent
    try:
        paths.make_dirs(folder)  # refuses a planted link, which would send the records outside the zoo home
        size, mtime_ns, ino, ctime_ns = stamp
        fields = {"path": str(path), "size": size, "mtime_ns": mtime_ns, "ino": ino, "ctime_ns": ctime_ns}
        # By rename: a link planted at the record's name is replaced, never written through.
        write_text_atomic(record, json.dumps({**fields, "sha256": digest}))
    except (OSError, StorageError):
        # A read-only zoo home (a copied cache on a shared mount) still serves files; this process
        # remembers the digest in memory, later ones hash again.
        pass


def remember(path: str | os.PathLike, digest: str) -> None:
    """Record that `path`, as it is now on disk, has sha256 `digest` (for this process and later ones)."""
    path = Path(path).absolute()
    stamp = _stamp(path.stat())
    with _memo_lock:
        _memo[str(path)] = (stamp, digest)
    _write_record(path, stamp, digest)


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
        stamp = _stamp(path.stat())
    except OSError:
        return None
    with _memo_lock:
        hit = _memo.get(str(path))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    found = _read_record(path)
    if found is not None and found[0] == stamp:
        with _memo_lock:
            _memo[str(path)] = found
        return found[1]
    return None


def digest(path: str | os.PathLike, *, rehash: bool = False) -> str:
    """The sha256 of `path`: remembered if the file is unchanged, else computed (and remembered)."""
    found = None if rehash else known_digest(path)
    if found is None:
        found = sha256_file(path)
        remember(path, found)
    return found


def verify(path: str | os.PathLike, expected: str | None) -> tuple[bool, str]:
    """(whether `path` has the `expected` sha256, its full digest). A remembered digest may say yes; a no is
    always the file's own hash, taken now (a record is a cache, never evidence against a file)."""
    remembered = known_digest(path)
    if remembered is not None and matches(expected, remembered):
        return True, remembered
    actual = digest(path, rehash=True)
    return matches(expected, actual), actual


def check(path: str | os.PathLike, expected: str | None, *, what: str) -> str:
    """Verify `path` against `expected`; return its full digest or raise IntegrityError (only after hashing the
    file itself: a remembered digest that disagrees is dropped, not believed)."""
    ok, actual = verify(path, expected)
    if not ok:
        raise IntegrityError(f"{what}: {path} has sha256 {actual}, expected {expected}")
    warn_if_partial(what, expected)
    return actual


USED_EVERY = 60.0  # seconds: "last used" is kept to the minute, which is all pruning needs


def mark_used(path: str | os.PathLike) -> None:
    """Set `path`'s atime to now (its "last used", for `zoo cache ls` and pruning), keeping what is remembered
    about it valid: the utime moves the file's ctime, which is part of the stamp, so a file known before is
    re-stamped (not re-hashed) after. A read-only cache is left as it is. A file used in the last
    USED_EVERY seconds is left as it is too: 64 ranks loading one file at once would otherwise each move its
    ctime, and each move makes the record look stale to the others for a moment (a needless hash each)."""
    path = Path(path).absolute()
    try:
        st = path.stat()
        if time.time() - st.st_atime < USED_EVERY:
            return
        before = _stamp(st)
        known = known_digest(path)
        os.utime(path, ns=(time.time_ns(), before[1]))
        after = _stamp(path.stat())
    except OSError:
        return
    # Only the ctime may have moved; anything else means someone else changed the file meanwhile.
    if known is not None and after[:3] == before[:3]:
        with _memo_lock:
            _memo[str(path)] = (after, known)
        _write_record(path, after, known)


def warn_if_partial(what: str, expected: str | None) -> None:
    """Warn once per process that `what` is only checked against a hash prefix."""
    if expected is None or len(expected) == 64:
        return
    with _memo_lock:
        if what in _warned_partial:
            return
        _warned_partial.add(what)
    known = f"only the sha256 prefix {expected!r} is known" if expected else "no sha256 is known"
    warnings.warn(
        f"{what}: {known}, so verification is partial; "
        "`zoo cache verify --pin` records the full hash of the file you have",
        stacklevel=3,
    )


def _pins_path() -> Path:
    return paths.home() / "pins.json"


def pins() -> dict[str, str]:
    """Full sha256s recorded by `zoo cache verify --pin` for entries whose manifest knows only a prefix."""
    raw = _read_small(_pins_path(), PINS_MAX)
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and _SHA256.match(v)}


def pin(key: str, full_digest: str) -> None:
    """Record the full sha256 of `key`'s file, so later checks of it are full ones."""
    path = _pins_path()
    paths.make_dirs(path.parent)
    with locks.file_lock(str(path) + ".lock", what="the pinned hashes"):
        data = pins()
        data[key] = full_digest
        try:
            write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        except OSError as e:
            raise paths.cannot_write(path, e) from None
