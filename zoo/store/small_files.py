"""Reading the small files zoo keeps in its home (the trusted list, ref indexes, integrity records, lock
owners) without trusting what is found at their names: anyone who can write the zoo home can plant a FIFO
(which blocks a plain `read_text` forever), a folder, a device, a link or a huge file there.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import StorageError, ZooError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def read_small(path: Path, *, limit: int, what: str, error: type[ZooError] = StorageError) -> bytes | None:
    """The bytes of `path`, a regular file of at most `limit` bytes, or None when nothing is there.

    Opened with O_NOFOLLOW|O_NONBLOCK and checked with fstat on the open file, so a planted link is not
    followed and a FIFO is not waited on. Anything else at `path` (a link, a folder, a FIFO, a device, a file
    over `limit`, a read error) is one `error` (the caller's layer's kind) naming the path, `what` zoo keeps
    there, and what to do.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _in_the_way(path, what, "a symbolic link", error) from None
        raise _unreadable(path, what, e, error) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise _in_the_way(path, what, kind, error)
        if st.st_size > limit:
            raise _in_the_way(path, what, f"a file of {st.st_size} bytes (zoo writes at most {limit})", error)
        data = os.read(fd, limit + 1)
    except OSError as e:
        raise _unreadable(path, what, e, error) from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew between fstat and read
        raise _in_the_way(path, what, f"a file of more than {limit} bytes", error)
    return data


def read_small_text(path: Path, *, limit: int, what: str, error: type[ZooError] = StorageError) -> str | None:
    """`read_small`, decoded as UTF-8; bytes that are not UTF-8 are one `error` naming the path."""
    data = read_small(path, limit=limit, what=what, error=error)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(
            f"{path} is not UTF-8 text, so it is not {what} as zoo writes it; remove it (or fix it)"
        ) from None


def _in_the_way(path: Path, what: str, kind: str, error: type[ZooError]) -> ZooError:
    return error(f"{path} is {kind}, not {what} as zoo writes it (a plain file); remove it")


def _unreadable(path: Path, what: str, oserror: OSError, error: type[ZooError]) -> ZooError:
    reason = oserror.strerror or type(oserror).__name__
    hint = (
        "ZOO_HOME, or a folder between it and this file, is not a folder"
        if oserror.errno == errno.ENOTDIR
        else "make it readable, or remove it"
    )
    return error(f"cannot read {what} {path}: {reason} ({hint})")
