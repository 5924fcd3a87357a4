"""Who wrote a temporary file, and whether that writer is gone: the tags in part and staging file names.

A writer names its temporaries `<host>.<pid>.<random>` so that no two writers share one, even where file locks
are not coherent across machines (NFS, GPFS, Lustre), and so that a later process can tell whether one was
abandoned: on this host, by asking whether its pid is alive; from another host, by how long it has been quiet
(`ZOO_PART_STALE` seconds, default an hour).
"""

from __future__ import annotations

import math
import os
import re
import socket
import time

from ..errors import StorageError

STALE_ENV = "ZOO_PART_STALE"
STALE = 3600.0  # seconds without a write after which another host's temporary counts as abandoned
_TAG = re.compile(r"(?P<host>[A-Za-z0-9_-]{1,16})\.(?P<pid>[0-9]{1,10})\.[0-9a-f]{6}")


def stale_seconds() -> float:
    """`ZOO_PART_STALE` in seconds, else STALE."""
    raw = os.environ.get(STALE_ENV, "").strip()
    try:
        value = float(raw) if raw else STALE
    except ValueError:
        value = math.nan
    if math.isnan(value) or value < 0:
        raise StorageError(f"{STALE_ENV}={raw!r} is not a number of seconds (0 or more)")
    return value


def host() -> str:
    """This host's name as it goes into a tag (letters, digits, `_` and `-`; at most 16 characters)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:16] or "host"


def new_tag() -> str:
    """A fresh tag for this writer: `<host>.<pid>.<6 random hex digits>`."""
    return f"{host()}.{os.getpid()}.{os.urandom(3).hex()}"


def parse(text: str) -> tuple[str, int] | None:
    """(host, pid) of a tag, or None if `text` is not one."""
    m = _TAG.fullmatch(text)
    return (m["host"], int(m["pid"])) if m else None


def alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def gone(tag: str, mtime: float, *, busy: bool = False) -> bool:
    """Whether the writer of a temporary tagged `tag` and last written at `mtime` is gone: on this host, its
    process is not running (this process's own temporaries count as gone unless `busy`); on another host, it
    has not been written for ZOO_PART_STALE seconds. An unknown tag is never gone."""
    owner = parse(tag)
    if owner is None:
        return False
    if owner[0] != host():
        return time.time() - mtime > stale_seconds()
    if owner[1] == os.getpid():
        return not busy
    return not alive(owner[1])
