"""What the zoo's weight cache holds, and removing from it: `zoo cache ls / verify / rm / prune`."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..store import integrity, paths
from ..store.download import lock_for
from . import copies, manifest
from .files import expected_sha256
from .manifest import Weights

SKIPPED_SUFFIXES = (".part", ".lock")  # downloads in progress and their locks
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass
class CachedFile:
    """A file of the zoo's weight cache and the manifest entries that name it."""

    path: Path
    size: int
    last_used: float  # seconds since the epoch (the file's atime, set on every use)
    entries: list[Weights] = field(default_factory=list)
    copy_size: int = 0  # its safetensors copy and record (`copies`), 0 when there is none

    @property
    def total(self) -> int:
        """Bytes the file and its safetensors copy take together."""
        return self.size + self.copy_size

    @property
    def keys(self) -> list[str]:
        return [w.key for w in self.entries]

    def expected(self) -> str | None:
        """The hash the file must have: the first entry's (pinned full hash if there is one)."""
        return expected_sha256(self.entries[0]) if self.entries else None

    def state(self, *, rehash: bool = False) -> str:
        """ "ok", "partial" (only a hash prefix is known), "bad", "unchecked", "unknown" (no entry) or
        "unreadable". Only `rehash=True` (a fresh hash) can say "bad": a remembered digest that disagrees is
        no evidence against the file, so without rehashing it reads "unchecked"."""
        if rehash:
            try:
                st = self.path.stat()
                digest = integrity.digest(self.path, rehash=True)
            except OSError:
                return "unreadable"
            # Reading the file may move its atime, which is its "last used": put it back (a read-only cache
            # keeps it moved), then remember the digest under the stamp the utime leaves.
            with contextlib.suppress(OSError):
                os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns))
                integrity.remember(self.path, digest)
        else:
            digest = integrity.known_digest(self.path)
        expected = self.expected()
        if digest is None:
            return "unchecked"
        if expected is None:
            return "unknown"
        if not integrity.matches(expected, digest):
            return "bad" if rehash else "unchecked"
        return "ok" if len(expected) == 64 else "partial"


def scan() -> list[CachedFile]:
    """Every complete file in the weight cache, most recently used first."""
    folder = paths.weights_dir()
    if not folder.is_dir():
        return []
    by_file: dict[str, list[Weights]] = {}
    for entry in manifest.load().weights.values():
        for w in entry.every_file():  # with the other files an entry needs, and their parts
            by_file.setdefault(w.file_name, []).append(w)
    files = []
    for path in folder.iterdir():
        if path.name.endswith(SKIPPED_SUFFIXES) or path.name.startswith("."):  # parts, locks, temporaries
            continue
        try:
            st = path.stat()
        except OSError:  # removed meanwhile (another prune), or a dangling link
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        found = CachedFile(path, st.st_size, st.st_atime, by_file.get(path.name, []), copies.size_of(path))
        files.append(found)
    return sorted(files, key=lambda f: f.last_used, reverse=True)


def find(name: str) -> list[CachedFile]:
    """Cached files matching a weights key, a model name (all its weights) or a file name."""
    return [
        f for f in scan() if name == f.path.name or name in f.keys or any(w.arch == name for w in f.entries)
    ]


def remove(f: CachedFile) -> None:
    """Delete a cached file, its safetensors copy and what is remembered about them (under their locks).

    A cache that cannot be changed (read-only, not ours) is one ZooError naming the file; nothing is deleted.
    """
    try:
        with lock_for(f.path):
            f.path.unlink(missing_ok=True)
            integrity.forget(f.path)
        remove_copy(f.path)
    except OSError as e:
        raise paths.cannot_write(f.path, e, doing="remove") from None


def remove_copy(source: Path) -> int:
    """Delete the safetensors copy of `source` (waiting for a process writing it); the bytes freed."""
    copy = copies.copy_path(source)
    if not copy.parent.is_dir():
        return 0
    with lock_for(copy):
        freed = copies.remove(source)
    return freed + copies.sweep()  # and what writers killed mid-copy left


def remove_orphans(*, dry_run: bool = False) -> int:
    """Delete safetensors copies whose source is gone from the cache (removed by hand, or by an older zoo);
    the bytes freed."""
    freed = 0
    for source in copies.orphans():
        if dry_run:
            freed += copies.size_of(source)
            continue
        with contextlib.suppress(OSError), lock_for(copies.copy_path(source)):
            freed += copies.remove(source)
    return freed if dry_run else freed + copies.sweep()


def prune(max_bytes: int, *, dry_run: bool = False) -> list[CachedFile]:
    """Remove least recently used files (each with its safetensors copy) until the cache holds at most
    `max_bytes`; return those removed. Copies whose source is gone are removed first."""
    remove_orphans(dry_run=dry_run)
    files = scan()
    total = sum(f.total for f in files)
    removed = []
    for f in reversed(files):  # oldest use first
        if total <= max_bytes:
            break
        if not dry_run:
            remove(f)
        total -= f.total
        removed.append(f)
    return removed


def parse_size(text: str) -> int:
    """Bytes in a size like "500M", "2G", "1.5GB", "10 MiB" or "0" (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if m is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 500M, 2G, 1.5GB)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def human_size(n: float) -> str:
    """`n` bytes as "12.3 MB"-style text (binary units)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
