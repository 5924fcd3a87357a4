"""The one file lock of zoo: says who holds it, gives up after `ZOO_LOCK_TIMEOUT`, never writes through a link.

`file_lock(path, what=...)` wraps filelock's OS lock (released by the kernel when its holder dies, so a killed
process leaves no stale lock) and adds what a user waiting on it needs: after acquiring, the holder writes its
pid and host into a small sidecar (`<lock>-owner.lock`, written by rename, so a link planted there is replaced,
not followed); a waiter reads it and says "waiting for <what>, held by pid N on host H" on a terminal and in the
timeout error. filelock >= 3.20.3 opens the lock file itself with O_NOFOLLOW; a lock path that is a link is also
refused here first, with a message that says what to do. The sidecar is not the lock file, because filelock may
keep its own marker in the lock file on file systems without flock.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import socket
import sys
import warnings
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from .._common import write_text_atomic
from ..errors import LockError, StorageError
from . import paths, small_files

TIMEOUT_ENV = "ZOO_LOCK_TIMEOUT"
POLL = 0.05  # seconds between attempts while waiting (filelock's default)
STILL_WAITING = 30.0  # seconds between "still waiting" lines on a terminal
_OWNER_MAX = 4096  # bytes read from an owner sidecar; more is not ours


def lock_timeout() -> float | None:
    """`ZOO_LOCK_TIMEOUT` in seconds, or None (wait as long as it takes) when it is unset or empty."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value) or value < 0:
        raise LockError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds (0 or more)")
    return None if math.isinf(value) else value


def owner_path(lock_path: str | os.PathLike) -> Path:
    """The sidecar where the holder of `lock_path` writes its pid and host (ends in `.lock`, so cache listings
    skip it as they skip the lock)."""
    lock_path = Path(lock_path)
    return lock_path.with_name(lock_path.name + "-owner.lock")


def read_owner(lock_path: str | os.PathLike) -> tuple[int, str] | None:
    """(pid, host) of the process that holds `lock_path`, as its sidecar says, or None if unknown."""
    try:
        data = json.loads(
            small_files.read_small(owner_path(lock_path), limit=_OWNER_MAX, what="a lock owner") or b""
        )
        pid, host = data["pid"], data["host"]
    except (StorageError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(host, str):
        return None
    return pid, host[:255]


class ZooLock:
    """A reentrant lock on `path` (the lock file), usable as a context manager and with `acquire`/`release`
    like a `filelock.FileLock`. Failures are `LockError`s that name the path."""

    def __init__(
        self, path: str | os.PathLike, *, what: str, timeout: float | None = None, show: bool | None = None
    ) -> None:
        self.path = Path(path)
        self.what = what
        self.timeout = timeout
        self.show = show
        if timeout is None:
            lock_timeout()  # a bad ZOO_LOCK_TIMEOUT is one LockError when the lock is made
        self._lock = FileLock(str(self.path))
        self._depth = 0
        self._unlocked = False

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock."""
        return self._depth > 0

    def acquire(self, timeout: float | None = None) -> ZooLock:
        """Take the lock, waiting at most `timeout` seconds (default: the constructor's, else ZOO_LOCK_TIMEOUT,
        else as long as it takes, saying so on a terminal)."""
        if self._depth:
            self._depth += 1
            return self
        limit = timeout if timeout is not None else self.timeout
        # Read before the first try, not only when the lock is contended: a typo in ZOO_LOCK_TIMEOUT is
        # reported at once, not on the day two processes meet.
        limit = limit if limit is not None else lock_timeout()
        self._refuse_link()
        if not self._try(0):
            show = sys.stderr.isatty() if self.show is None else self.show
            if show:
                until = (
                    f"up to {limit:g} s" if limit is not None else f"as long as it takes; set {TIMEOUT_ENV}"
                )
                print(
                    f"zoo: waiting for {self.what}, {self._holder()} ({until})", file=sys.stderr, flush=True
                )
            waited = 0.0
            while True:
                step = STILL_WAITING if limit is None else min(STILL_WAITING, limit - waited)
                if self._try(step):
                    break
                waited += step
                if limit is not None and waited >= limit:
                    raise LockError(
                        f"timed out after {limit:g} s waiting for {self.what} ({self.path}), {self._holder()}; "
                        f"wait for it to finish, or raise {TIMEOUT_ENV}"
                    )
                if show:  # a wait that says nothing looks like a hang
                    print(
                        f"zoo: still waiting for {self.what}, {self._holder()} ({waited:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
        self._depth = 1
        self._write_owner()
        return self

    def release(self) -> None:
        """Give the lock up (the outermost release of a nested hold does)."""
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        if read_owner(self.path) == _me():
            with contextlib.suppress(OSError):
                owner_path(self.path).unlink()
        if self._unlocked:  # the file system has no locks: nothing was taken
            self._unlocked = False
            return
        self._lock.release()

    def __enter__(self) -> ZooLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _try(self, timeout: float) -> bool:
        try:
            self._lock.acquire(timeout=timeout, poll_interval=POLL)
        except Timeout:
            return False
        except OSError as e:
            if e.errno in _NO_LOCKS:
                # NFS mounted `nolock`, some FUSE file systems: zoo's writes stay correct without the lock
                # (private part files, atomic renames); two processes may only do the same work twice.
                _warn_no_locks(self.path)
                self._unlocked = True
                return True
            raise _cannot_create(self.path, e) from None
        return True

    def _refuse_link(self) -> None:
        for path in (self.path, owner_path(self.path)):
            if path.is_symlink():
                raise LockError(
                    f"cannot lock {self.what}: {path} is a symbolic link, and zoo never writes through a link "
                    "planted where it keeps its locks (remove it)"
                )
        paths.make_dirs(self.path.parent)

    def _holder(self) -> str:
        owner = read_owner(self.path)
        return f"held by pid {owner[0]} on host {owner[1]}" if owner else "held by another process"

    def _write_owner(self) -> None:
        pid, host = _me()
        with contextlib.suppress(OSError):  # who holds it is for messages only; a read-only folder skips it
            write_text_atomic(owner_path(self.path), json.dumps({"pid": pid, "host": host}))


_NO_LOCKS = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP}
_warned_folders: set[str] = set()


def _warn_no_locks(path: Path) -> None:
    folder = str(path.parent)
    if folder in _warned_folders:
        return
    _warned_folders.add(folder)
    warnings.warn(
        f"the file system of {folder} does not support locks: zoo goes on without them (its files stay "
        "correct; processes sharing this folder may download the same file more than once)",
        stacklevel=4,
    )


def _me() -> tuple[int, str]:
    return os.getpid(), socket.gethostname()


def _cannot_create(path: Path, error: OSError) -> LockError:
    message = str(paths.cannot_write(path, error, doing="create the lock file"))
    return LockError(message)


def file_lock(
    path: str | os.PathLike, *, what: str, timeout: float | None = None, show: bool | None = None
) -> ZooLock:
    """The lock whose file is `path`: a context manager (and `acquire`/`release`) that waits at most `timeout`
    seconds (default ZOO_LOCK_TIMEOUT, else forever, saying so on a terminal), reports who holds it, and raises
    LockError naming the path when it cannot be created. `what` names what it guards in messages. `show`
    forces the waiting line on (True) or off (False); None prints it when stderr is a terminal."""
    return ZooLock(path, what=what, timeout=timeout, show=show)


def lock_for(path: str | os.PathLike, *, show: bool | None = None) -> ZooLock:
    """The lock that guards writing, replacing and deleting `path`.

    A file inside the zoo home keeps its lock beside it (`<file>.lock`, which cache listings skip). A file
    elsewhere (a `dst=` the user named, a published repo) gets `$ZOO_HOME/locks/<sha1>.lock`, named by the
    sha1 of its path with the folder resolved, so no lock file is left beside the user's file and every
    spelling of the same folder (a link to it, `a/../a`) shares one lock. The last part is not resolved: it
    is the name that is replaced, and a link there is replaced, not followed.
    """
    path = Path(path).absolute()
    where, home = _resolved(path.parent) / path.name, _resolved(paths.home())
    if where.is_relative_to(home):
        return file_lock(str(path) + ".lock", what=path.name, show=show)
    name = hashlib.sha1(os.fsencode(where)).hexdigest() + ".lock"
    return file_lock(paths.home() / "locks" / name, what=str(path), show=show)


def _resolved(folder: Path) -> Path:
    try:
        return folder.resolve()
    except (OSError, RuntimeError):  # a loop of links: the path as written still names one lock
        return folder.absolute()
