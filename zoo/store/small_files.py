"""Reading the small files zoo keeps in its home (the trusted list, ref indexes, integrity records, lock
owners) and small files users name (a categories list) without trusting what is found at their names: anyone who can write the zoo home can plant a FIFO
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


class NotRegularFile(Exception):
    """What `read_regular` found is not a regular file; `kind` says what it is ("a FIFO", "a folder", ...)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class FileTooLarge(Exception):
    """What `read_regular` found is over its limit; `size` is its size, or None if it grew while read."""

    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def read_regular(path: str | os.PathLike, limit: int, *, follow_links: bool = False) -> bytes:
    """The bytes of the regular file `path`, of at most `limit` bytes.

    Opened with O_NONBLOCK (and O_NOFOLLOW unless `follow_links`) and checked with fstat on the open file, so
    a FIFO is never waited on and a link is not followed where zoo keeps its own files. Raises OSError (an
    ELOOP one for a link), NotRegularFile or FileTooLarge; each caller words them for its own layer.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(
                next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            )
        if st.st_size > limit:
            raise FileTooLarge(st.st_size)
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # grew between fstat and read
        raise FileTooLarge(None)
    return data


def read_small(path: Path, *, limit: int, what: str, error: type[ZooError] = StorageError) -> bytes | None:
    """The bytes of `path`, a regular file of at most `limit` bytes, or None when nothing is there.

    Read with `read_regular`, links not followed. Anything else at `path` (a link, a folder, a FIFO, a device,
    a file over `limit`, a read error) is one `error` (the caller's layer's kind) naming the path, `what` zoo
    keeps there, and what to do.
    """
    try:
        return read_regular(path, limit)
    except FileNotFoundError:
        return None
    except NotRegularFile as e:
        raise _in_the_way(path, what, e.kind, error) from None
    except FileTooLarge as e:
        size = (
            f"{e.size} bytes (zoo writes at most {limit})"
            if e.size is not None
            else f"more than {limit} bytes"
        )
        raise _in_the_way(path, what, f"a file of {size}", error) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _in_the_way(path, what, "a symbolic link", error) from None
        raise _unreadable(path, what, e, error) from None


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
