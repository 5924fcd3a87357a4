"""`zoo.download`: fetch a URL into a verified local file.

The file is streamed to a part file of this writer's own beside the target (`<name>.<host>.<pid>.<random>.part`)
and hashed on the way. A dropped connection is resumed with an HTTP Range request (also by a later process,
which takes over the part of a writer that is gone by an atomic rename), with `If-Range` and the first
answer's validator (ETag or Last-Modified, kept in `<part name>.resume.part`), so bytes of two versions of
a file are never spliced; connection errors, timeouts and 5xx answers are retried with exponential backoff
(said on a terminal), a refused connection, an unknown host, a header value that cannot be sent or an
answer http.client cannot read fails at once; a stall rule (fewer than STALL_BYTES in STALL_WINDOW seconds),
a limit on each answer's status line and headers (HEADER_TIMEOUT) and an overall deadline
(`ZOO_DOWNLOAD_TIMEOUT`, which also ends a read blocked on a trickle) end a server that trickles; only a
complete file whose hash matches is renamed into place, and until then a file already at the target is kept.
A lock per target (`store.locks.lock_for`: beside it in the zoo home, in `$ZOO_HOME/locks/` elsewhere) makes
concurrent processes (torchrun ranks) download once: the others wait, then find the finished file. The lock
only saves work: correctness does not rest on it (file systems whose locks are not coherent across machines),
since no two writers share a part, a file is installed by one atomic rename only once its hash matches, and it
is remembered as verified only if the target is still the file that was renamed there.
Nothing is written through a link planted in the cache: the part file is opened with O_NOFOLLOW (and created
with O_EXCL), everything else is written by rename. No message shows a URL's credentials or query.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urljoin, urlsplit
from urllib.request import url2pathname

from .._common import redact, same_origin, show_url, write_text_atomic
from .._version import __version__
from ..errors import DownloadError, IntegrityError, StorageError
from . import integrity, locks, owners, paths, small_files

if TYPE_CHECKING:
    import requests

# requests, urllib3 and tqdm load with the first transfer, not with every command that only asks whether
# zoo is offline or takes a lock (together 90 ms of `zoo --help`'s 210 ms here).

CHUNK = 1 << 20
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0  # seconds of silence before a read gives up (and the transfer is retried)
# Seconds for an answer's status line and headers. The read timeout alone cannot end a server that sends
# them one byte a second (http.client accepts 64 KiB lines and 100 of them: about 75 days at that pace).
HEADER_TIMEOUT = 60.0
# A server that sends fewer than STALL_BYTES in STALL_WINDOW seconds (about 1 KiB/s) is stalled: it is retried,
# and such an attempt does not count as progress, so a trickle cannot keep a download alive forever.
STALL_WINDOW = 60.0
STALL_BYTES = 64 * 1024
DEADLINE = (
    6 * 3600.0
)  # seconds for one download, retries included, unless ZOO_DOWNLOAD_TIMEOUT says otherwise
DEADLINE_ENV = "ZOO_DOWNLOAD_TIMEOUT"
RETRIES = 5
BACKOFF = 1.0  # seconds before the first retry; doubled for each further one
MAX_BACKOFF = 30.0
MAX_REDIRECTS = 10
_RETRY_STATUS = {408, 425, 429}
_META_MAX = 4096  # bytes of a `.resume.part` file; more was not written by zoo
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK}  # what O_NOFOLLOW answers for a link (Linux, FreeBSD)
_sleep = time.sleep  # tests replace it to check the backoff without waiting
_write = os.write  # tests replace it to fill the disk


class _Retry(Exception):
    """A failure worth another attempt (the partial file is kept)."""


_offline: ContextVar[bool | None] = ContextVar("zoo_offline", default=None)


def is_offline(offline: bool | None = None) -> bool:
    """`offline` if given, else the innermost `offline_mode`, else whether `ZOO_OFFLINE` is set to a true value."""
    if offline is not None:
        return offline
    if _offline.get() is not None:
        return bool(_offline.get())
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no", "off")


@contextlib.contextmanager
def offline_mode(offline: bool | None) -> Iterator[None]:
    """Within the block, weight resolution and downloads follow `offline` (None: leave it as it is)."""
    if offline is None:
        yield
        return
    token = _offline.set(offline)
    try:
        yield
    finally:
        _offline.reset(token)


# The lock of a target: beside it in the zoo home, under `$ZOO_HOME/locks/` elsewhere (see `store.locks`).
lock_for = locks.lock_for


def is_remote(url: str) -> bool:
    """Whether fetching `url` needs the network (http or https)."""
    return _split(url).scheme in ("http", "https")


def _split(url: str, *, where: str = "") -> SplitResult:
    # urlsplit raises ValueError for what it cannot read (`http://[::1`, a port of letters): one DownloadError.
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (checked here: requests would fail on it later, with the URL in its text)
    except ValueError:
        raise DownloadError(f"{where}{show_url(url)} is not a valid URL") from None
    return parts


def deadline_seconds() -> float | None:
    """Seconds one download may take, retries included: `ZOO_DOWNLOAD_TIMEOUT` (a number, or `inf` for no
    limit), else DEADLINE."""
    raw = os.environ.get(DEADLINE_ENV, "").strip()
    if not raw:
        return DEADLINE
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value) or value <= 0:
        raise DownloadError(f"{DEADLINE_ENV}={raw!r} is not a number of seconds above 0 (or inf)")
    return None if math.isinf(value) else value


def download(
    url: str,
    dst: str | os.PathLike | None = None,
    *,
    sha256: str | None = None,
    progress: bool | None = None,
    size: int | None = None,
    headers: dict[str, str] | None = None,
    offline: bool | None = None,
    label: str | None = None,
) -> Path:
    """Download `url` (http, https or file) to `dst` and return its path, verified against `sha256`.

    `dst` defaults to the zoo's weight cache under the URL's file name; an existing folder gets the file
    inside it. `sha256` may be a full digest or a prefix (verification is then partial, with a warning).
    With `sha256` given, a `dst` that already holds the right file is returned without a transfer.
    `progress=None` shows a bar (and retries, waits) only when stderr is a terminal. `headers` (e.g. a token)
    are sent to the URL's own host only, never to a redirect target on another host; one that cannot be sent
    (a line break, a character outside Latin-1) is a DownloadError naming it, never showing its value. A file
    already at `dst` that does not match `sha256` stays until a verified download replaces it. `label` names
    the file in warnings. Failures are DownloadError, IntegrityError or StorageError (a folder or disk that cannot be
    written), with no secret of the URL in their text.
    """
    _split(url)
    headers = _checked_headers(url, headers or {})
    if is_offline(offline) and is_remote(url):
        raise DownloadError(f"offline (ZOO_OFFLINE or offline=True): not downloading {show_url(url)}")
    target = _target(url, dst)
    limit = deadline_seconds()
    paths.make_dirs(target.parent)
    show = sys.stderr.isatty() if progress is None else progress
    if sha256 is not None and target.is_file() and integrity.verify(target, sha256)[0]:
        # Reading needs no lock: a good file is served even from a read-only folder where none can be made.
        integrity.check(target, sha256, what=label or target.name)
        return target
    with lock_for(target, show=show):
        if sha256 is not None and target.is_file():
            good, _ = integrity.verify(target, sha256)  # a "bad" here is the file's own hash, not a record's
            if good:
                integrity.check(target, sha256, what=label or target.name)
                return target
            # The file that does not match stays until a verified download replaces it (one rename): a failed
            # download must not cost the user the file they had (nor a file:// source that is `dst` itself).
        job = _Job(url, target, sha256=sha256, show=show, size=size, headers=headers, limit=limit)
        path = job.run()
        integrity.warn_if_partial(label or target.name, sha256)
        return path


def _target(url: str, dst: str | os.PathLike | None) -> Path:
    if dst is not None and not Path(dst).expanduser().is_dir():
        return Path(dst).expanduser()
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    # Decoded, a name could climb out of the folder (`..%2F..%2Fevil.pth`): only plain names are taken.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise DownloadError(f"cannot tell a safe file name from {show_url(url)}; pass dst=")
    return (Path(dst).expanduser() if dst is not None else paths.weights_dir()) / name


# RFC 9110: a field name is a token; a value is visible Latin-1 characters, spaces and tabs, without line breaks
# or other control characters, and does not begin with white space (requests refuses that too).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"(?:[^\x00-\x20\x7f][^\x00-\x08\x0a-\x1f\x7f]*)?")


def _checked_headers(url: str, headers: dict[str, str]) -> dict[str, str]:
    """`headers`, if every one can be sent as it is; else one DownloadError that names the header but never
    shows its value (a token). Checked before anything is sent: requests would raise InvalidHeader with the
    value in its text, and http.client a UnicodeEncodeError for a character outside Latin-1."""
    if not isinstance(headers, dict):
        raise DownloadError(f"{show_url(url)}: headers must be a dict of names to text values")
    for number, (name, value) in enumerate(headers.items(), 1):
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            # Not shown: a name that is not a token may be a whole "Authorization: Bearer ..." line.
            raise DownloadError(
                f"{show_url(url)}: header {number} has a name that is not a valid HTTP header name "
                "(letters, digits and !#$%&'*+-.^_`|~ only); nothing was sent"
            )
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            why = f"is a {type(value).__name__}, not text"
        elif not _HEADER_VALUE.fullmatch(value):
            why = "has a line break, a control character or leading white space"
        elif not value.isascii() and max(map(ord, value)) > 0xFF:
            why = "has a character outside Latin-1, which HTTP cannot carry"
        else:
            continue
        raise DownloadError(
            f"{show_url(url)}: the {name} header cannot be sent: its value {why} (value not shown; check the "
            "token or value it comes from); nothing was sent"
        )
    return headers


_PART_NAME = re.compile(r"\.(?P<tag>[A-Za-z0-9_.-]+)\.part")
_writing: set[str] = set()  # the part files this process is writing now
_writing_lock = threading.Lock()


class _Partial:
    """This writer's own part file, the running hash of the bytes it holds, and the validator of their file.

    Every writer has a part of its own, `<name>.<host>.<pid>.<random>.part`, created with O_EXCL and opened
    without following a link: on a file system whose locks are not coherent across machines (NFS, GPFS,
    Lustre), two writers never append to one file. A part left by a writer that is gone (a pid no longer
    alive on this host; on another host, or a part of an older zoo, one not written for ZOO_PART_STALE
    seconds) is taken over by an atomic rename, so one taker only resumes it.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        own = f"{target.name}.{owners.new_tag()}.part"
        self.path = target.with_name(own)
        self.meta_path = _meta_of(self.path)
        self.hash = hashlib.sha256()
        self.offset = 0
        self.resumed = False
        self.validator: dict[str, str] = {}
        with _writing_lock:
            _writing.add(str(self.path))
        self._take_over()

    def close(self) -> None:
        """This process no longer writes the part (it stays, for a later writer to take over)."""
        with _writing_lock:
            _writing.discard(str(self.path))

    def _abandoned(self) -> list[Path]:
        """Parts of the same target whose writer is gone, the fullest first."""
        folder, name = self.target.parent, self.target.name
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        owners.stale_seconds()  # a bad ZOO_PART_STALE is one clear error even when nothing is left over
        found = []
        for entry in names:
            rest = entry[len(name) :]
            tagged = _PART_NAME.fullmatch(rest)
            if not entry.startswith(name) or (rest != ".part" and tagged is None):
                continue
            path = folder / entry
            if path == self.path:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if (
                tagged is None
            ):  # `<name>.part` of a zoo before private parts, which wrote it under the lock held now
                abandoned = True
            else:
                with _writing_lock:
                    busy = str(path) in _writing  # this process's own parts: abandoned unless being written
                abandoned = owners.gone(tagged["tag"], st.st_mtime, busy=busy)
            if abandoned:
                found.append((st.st_size, path))
        return [p for _, p in sorted(found, key=lambda f: -f[0])]

    def _take_over(self) -> None:
        for path in self._abandoned():
            try:
                os.rename(path, self.path)  # atomic: of two writers, one takes it and the other finds it gone
            except OSError:
                continue
            with contextlib.suppress(OSError):
                os.rename(_meta_of(path), self.meta_path)
            self._pick_up()
            return

    def _pick_up(self) -> None:
        # Left by a dropped transfer or a killed process: hash what it holds, and learn which file it is of.
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            self.drop_meta()
            return
        except OSError:  # a link (O_NOFOLLOW) or something unreadable: not a part to resume
            self.reset()
            return
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.reset()
                return
            with os.fdopen(fd, "rb", closefd=False) as f:
                while chunk := f.read(CHUNK):
                    self.hash.update(chunk)
                    self.offset += len(chunk)
        finally:
            os.close(fd)
        self.resumed = self.offset > 0
        self.validator = self._read_meta() if self.resumed else {}

    def _read_meta(self) -> dict[str, str]:
        try:  # anything but zoo's own small JSON file (a link, a FIFO, junk) means no validator
            data = json.loads(small_files.read_regular(self.meta_path, _META_MAX))
        except (OSError, ValueError, small_files.NotRegularFile, small_files.FileTooLarge):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if k in ("etag", "last_modified") and isinstance(v, str)}

    def remember_validator(self, validator: dict[str, str]) -> None:
        """Keep the validator of the file whose bytes the part is about to hold (beside it, for a later
        process; by rename, so never through a planted link). A folder where it cannot be written keeps it
        in memory: a later process then starts over unless the hash can tell."""
        self.validator = validator
        if not validator:
            self.drop_meta()
            return
        with contextlib.suppress(OSError):
            write_text_atomic(self.meta_path, json.dumps(validator))

    def if_range(self) -> str | None:
        """The If-Range value that makes a resume continue this very file: a strong ETag, else Last-Modified."""
        etag = self.validator.get("etag", "")
        if etag and not etag.startswith("W/"):  # a weak ETag may not be used in If-Range (RFC 9110 13.1.5)
            return etag
        return self.validator.get("last_modified") or None

    def drop_meta(self) -> None:
        with contextlib.suppress(OSError):
            self.meta_path.unlink()

    def reset(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as e:
            raise paths.cannot_write(self.path, e, doing="remove") from None
        self.drop_meta()
        self.hash = hashlib.sha256()
        self.offset = 0
        self.resumed = False
        self.validator = {}

    def open(self) -> int:
        """A descriptor to append to the part: the existing one if it holds bytes, else a new file."""
        if self.offset:
            flags = os.O_WRONLY | os.O_APPEND
        else:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                self.path.unlink()
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(self.path, flags | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as e:
            if e.errno in _LINK_ERRNOS or e.errno == errno.EEXIST or isinstance(e, FileNotFoundError):
                self.reset()  # planted, or another writer's, since we looked: start over on a clean name
                raise _Retry("the part file changed under this download; starting again") from None
            raise paths.cannot_write(self.path, e) from None
        if os.fstat(fd).st_size != self.offset:  # another writer (no coherent locks here): start over
            os.close(fd)
            self.reset()
            raise _Retry("the part file changed under this download; starting again")
        return fd

    def add(self, fd: int, chunk: bytes) -> None:
        """Append `chunk`, hashing exactly what reached the file (a full disk keeps the bytes written)."""
        view = memoryview(chunk)
        while view:
            try:
                n = _write(fd, view)
            except OSError as e:
                error = paths.cannot_write(self.path, e)
                kept = f"; {self.offset} bytes received are kept there to resume" if self.offset else ""
                raise StorageError(f"{error}{kept}") from None
            self.hash.update(view[:n])
            self.offset += n
            view = view[n:]


def _meta_of(part: Path) -> Path:
    """`<name>.resume.part` beside the part `<name>.part`: the validator of the file its bytes are of."""
    return part.with_name(part.name[: -len(".part")] + ".resume.part")


def _validator(resp: requests.Response) -> dict[str, str]:
    found = {"etag": resp.headers.get("ETag", ""), "last_modified": resp.headers.get("Last-Modified", "")}
    found = {k: v.strip()[:1024] for k, v in found.items()}
    # Sent back in If-Range: a value with a line break (a folded header) or other control character is dropped.
    return {k: v for k, v in found.items() if v and _HEADER_VALUE.fullmatch(v)}


class _Job:
    """One download of `url` into `target`: attempts, retries, the stall rule and the deadline."""

    def __init__(
        self,
        url: str,
        target: Path,
        *,
        sha256: str | None,
        show: bool,
        size: int | None,
        headers: dict[str, str],
        limit: float | None,
    ) -> None:
        self.url = url
        self.target = target
        self.name = target.name
        self.sha256 = sha256
        self.show = show
        self.size = size
        self.headers = headers
        self.limit = limit
        self.deadline = math.inf if limit is None else time.monotonic() + limit
        self.part = _Partial(target)

    def run(self) -> Path:
        try:
            return self._run()
        finally:
            self.part.close()

    def _run(self) -> Path:
        part = self.part
        fresh_retry = part.resumed  # bytes from an earlier transfer may belong to an older file: one retry
        with _session() as session:
            while True:
                self.transfer(session)
                actual = part.hash.hexdigest()
                if integrity.matches(self.sha256, actual) and self._unchanged():
                    break
                part.reset()
                if not fresh_retry:
                    raise IntegrityError(
                        f"{show_url(self.url)}: the downloaded file has sha256 {actual}, expected {self.sha256} "
                        "(deleted; the server sends a different file than the one expected)"
                    )
                fresh_retry = False
        part.drop_meta()
        try:
            installed = os.lstat(part.path)
            os.replace(part.path, self.target)  # replaces a link at the target; never writes through it
        except OSError as e:
            raise paths.cannot_write(self.target, e, doing="move the finished download to") from None
        # Remembered as verified only if the target is still the file renamed there: without coherent locks,
        # another writer may have renamed its own (equally verified) copy over it since.
        with contextlib.suppress(OSError):
            now = os.lstat(self.target)
            if (now.st_dev, now.st_ino) == (installed.st_dev, installed.st_ino):
                integrity.remember(self.target, actual)
        return self.target

    def _unchanged(self) -> bool:
        """Whether the part holds exactly the bytes hashed (a writer that was taken for gone may still append)."""
        try:
            return os.lstat(self.part.path).st_size == self.part.offset
        except OSError:
            return False

    def transfer(self, session: requests.Session) -> None:
        if not is_remote(self.url):
            _copy_local(self.url, self.part)
            return
        import requests
        import urllib3

        part = self.part
        failures = 0
        while True:
            self.check_deadline()
            offset = part.offset
            try:
                self.attempt(session)
                return
            except _Retry as e:
                reason = str(e)
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as e:
                fatal = _fatal(e)
                if fatal is not None:
                    raise DownloadError(f"{show_url(self.url)}: {fatal}") from None
                reason = _reason(e)
            # A flaky link that makes progress each time is not given up on: only attempts in a row without
            # real progress (a trickle below the stall rule is none) count.
            failures = 1 if part.offset - offset >= STALL_BYTES else failures + 1
            if failures > RETRIES:
                raise DownloadError(
                    f"{show_url(self.url)}: {reason} (gave up after {RETRIES} retries{self.kept()})"
                )
            self.check_deadline(reason)
            wait = min(MAX_BACKOFF, BACKOFF * 2 ** (failures - 1), max(0.0, self.deadline - time.monotonic()))
            if self.show:
                print(f"zoo: retrying {self.name} in {wait:.3g} s: {reason}", file=sys.stderr, flush=True)
            _sleep(wait)

    def kept(self) -> str:
        part = self.part
        return f"; {part.offset} bytes kept in {part.path} for the next try" if part.offset else ""

    def check_deadline(self, reason: str | None = None) -> None:
        if time.monotonic() >= self.deadline:
            why = f" (last: {reason})" if reason else ""
            raise DownloadError(
                f"{show_url(self.url)}: not finished within {self.limit:g} s ({DEADLINE_ENV}){why}{self.kept()}"
            )

    def timeouts(self) -> tuple[float, float]:
        left = max(0.001, self.deadline - time.monotonic())
        return min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left)

    def attempt(self, session: requests.Session) -> None:
        from tqdm.auto import tqdm

        part = self.part
        request_headers = {"Accept-Encoding": "identity"}  # byte offsets must be those of the file itself
        if part.offset:
            if_range = part.if_range()
            if if_range is None and self.sha256 is None:
                # Nothing can tell whether the bytes held are of the file served now: never splice, start over.
                part.reset()
            else:
                request_headers["Range"] = f"bytes={part.offset}-"
                if if_range is not None:
                    request_headers["If-Range"] = if_range
        url = self.url
        resp, sock = _get(session, url, self.headers, request_headers, self.timeouts(), self.deadline)
        # The deadline also ends a body read that never returns (a chunked body whose size line trickles).
        with resp, _cut_at(sock, self.deadline) as cut:
            status = resp.status_code
            reason = redact(resp.reason or "")
            if status >= 500 or status in _RETRY_STATUS:
                raise _Retry(f"HTTP {status} {reason}")
            if status == 416 and part.offset:
                # The `.part` may already hold the whole file (killed between the last byte and the rename).
                if resp.headers.get("Content-Range", "").strip() == f"bytes */{part.offset}":
                    return
                part.reset()
                raise _Retry("the server refused to resume; starting again")
            if status >= 400:
                raise DownloadError(f"{show_url(url)}: HTTP {status} {reason}")
            if status not in (200, 206):  # a 3xx without Location, a 204...: nothing to keep as the file
                raise DownloadError(
                    f"{show_url(url)}: HTTP {status} {reason} is not a file (a redirect without a Location?)"
                )
            encoding = resp.headers.get("Content-Encoding", "").strip().lower()
            if encoding not in ("", "identity"):
                raise DownloadError(
                    f"{show_url(url)}: the server sent the file {encoding}-encoded although zoo asked for it as is "
                    "(Accept-Encoding: identity); its bytes are not the file's, so nothing was kept"
                )
            total = self.expected_total(resp)
            fd = part.open()
            try:
                with tqdm(
                    total=total,
                    initial=part.offset,
                    disable=not self.show,
                    unit="B",
                    unit_scale=True,
                    desc=self.name,
                ) as bar:
                    self.receive(resp, fd, bar, total)
            finally:
                os.close(fd)
        if cut.fired:  # the end of the stream was the cut, not the end of the file
            self.check_deadline("the deadline passed during the transfer")
            raise _Retry("the transfer was cut at the deadline")
        if total is not None and part.offset < total:
            raise _Retry(f"the connection closed after {part.offset} of {total} bytes")

    def receive(self, resp: requests.Response, fd: int, bar: object, total: int | None) -> None:
        part = self.part
        limit = total if total is not None else self.size
        window_start, window_bytes = time.monotonic(), 0
        for chunk in _chunks(resp):
            part.add(fd, chunk)
            bar.update(len(chunk))  # type: ignore[attr-defined]
            if limit is not None and part.offset > limit:
                part.reset()
                raise DownloadError(
                    f"{show_url(self.url)}: the server sent more than the {limit} bytes expected"
                )
            now = time.monotonic()
            window_bytes += len(chunk)
            if now - window_start >= STALL_WINDOW:
                if window_bytes < STALL_BYTES:
                    raise _Retry(
                        f"the server sent only {window_bytes} bytes in {now - window_start:.3g} s (stalled)"
                    )
                window_start, window_bytes = now, 0
            self.check_deadline()

    def expected_total(self, resp: requests.Response) -> int | None:
        part = self.part
        validator = _validator(resp)
        if resp.status_code == 206:
            m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", "").strip())
            if m is None or int(m.group(1)) != part.offset:
                part.reset()
                raise _Retry("the server resumed at another offset; starting again")
            if _changed(part.validator, validator):
                part.reset()
                raise _Retry("the file changed on the server since the transfer began; starting again")
            part.remember_validator(validator or part.validator)
            total = int(m.group(2)) if m.group(2) != "*" else None
        else:
            if part.offset:  # the server ignored the Range header, or If-Range said the file changed
                part.reset()
            part.remember_validator(validator)
            length = resp.headers.get("Content-Length", "").strip()
            total = int(length) if length.isdigit() else None
        if self.size is not None and total is not None and total != self.size:
            part.reset()
            raise DownloadError(
                f"{show_url(self.url)}: the server announces {total} bytes, expected {self.size}"
            )
        return total if total is not None else self.size


def _changed(before: dict[str, str], now: dict[str, str]) -> bool:
    """Whether two validators name different versions of a file (only fields both have are compared)."""
    return any(k in before and k in now and before[k] != now[k] for k in ("etag", "last_modified"))


def _fatal(e: Exception) -> str | None:
    """Why `e` is not worth a retry, or None if it is: a bad URL, a certificate problem, a host that does not
    resolve or a refused connection (without a network, five retries only made every call wait 31 s)."""
    import http.client

    import requests
    import urllib3

    for inner in _wrapped(e):
        if isinstance(inner, requests.exceptions.InvalidHeader):
            # Its text holds the header's value (a token): never shown. zoo's own headers are checked before
            # sending, so this is one that requests built.
            return "a request header could not be sent (a line break or a character HTTP cannot carry)"
        if isinstance(inner, http.client.LineTooLong) or type(inner) is http.client.HTTPException:
            # Over 64 KiB in one line, or over 100 headers: the server's answer, not the network, is at fault.
            return f"the server's answer cannot be read ({_first_line(inner)})"
    if isinstance(
        e,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.SSLError,  # a certificate problem does not go away by waiting
        ),
    ):
        return _first_line(e)
    if isinstance(e, requests.exceptions.ConnectTimeout):
        return None
    reason = e.args[0] if e.args else None
    reason = getattr(reason, "reason", reason)  # requests wraps urllib3's MaxRetryError around the cause
    if isinstance(e, urllib3.exceptions.NewConnectionError):
        reason = e
    if not isinstance(reason, urllib3.exceptions.NewConnectionError):
        return None
    conn = getattr(reason, "conn", None)
    host, port = getattr(conn, "host", None), getattr(conn, "port", None)
    where = f"{host}:{port}" if host and port else "the server"
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return f"cannot resolve the host {host or ''} (no network, or a wrong host name? ZOO_OFFLINE=1 uses only the cache)"
    cause = reason.__cause__ or reason.__context__
    why = cause.strerror if isinstance(cause, OSError) and cause.strerror else _first_line(reason)
    return f"connection to {where} failed: {why}"


def _wrapped(e: BaseException) -> Iterator[BaseException]:
    """`e` and the errors requests and urllib3 wrap in it (in args, as a cause, or as a MaxRetryError's reason)."""
    seen: list[BaseException] = []
    todo = [e]
    while todo:
        inner = todo.pop()
        if any(inner is s for s in seen):
            continue
        seen.append(inner)
        yield inner
        more = [*inner.args, inner.__cause__, getattr(inner, "reason", None)]
        todo.extend(x for x in more if isinstance(x, BaseException))


def _reason(e: Exception) -> str:
    import requests
    import urllib3

    if isinstance(e, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(e, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)):
        return "read timed out"
    if isinstance(e, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
        return "connection dropped during the transfer"
    return f"connection failed ({_first_line(e)})"


def _first_line(e: Exception) -> str:
    """The first line of an exception's text, with every URL in it shown without its secrets."""
    text = redact(str(e)).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _chunks(resp: requests.Response) -> Iterator[bytes]:
    # read1 returns what has arrived, so a dropped or stalled connection loses no byte received.
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:
        yield from resp.iter_content(1 << 16)
        return
    while chunk := read1(CHUNK):
        yield chunk


def _get(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    request_headers: dict[str, str],
    timeouts: tuple[float, float],
    until: float = math.inf,
) -> tuple[requests.Response, socket.socket | None]:
    """The first answer that is not a redirect, and the socket it arrives on (None if unknown). Each answer's
    status line and headers must arrive within HEADER_TIMEOUT seconds and before `until` (monotonic)."""
    # Redirects are followed by hand: the caller's headers (tokens) go to the first origin only, so
    # never to another host nor, in clear text, to http on the same host.
    import requests

    first = url
    for _ in range(MAX_REDIRECTS + 1):
        same_host = same_origin(url, first)
        answered: list[requests.Response] = []
        watch = _Watch(min(until, time.monotonic() + HEADER_TIMEOUT))
        token = _watch.set(watch)
        try:
            resp = session.get(
                url,
                headers={
                    "User-Agent": f"zoo/{__version__}",
                    **(headers if same_host else {}),
                    **request_headers,
                },
                stream=True,
                timeout=timeouts,
                allow_redirects=False,
                # Called with the answer before requests reads its Location: tells a bad redirect apart
                # from a request that could not be sent.
                hooks={"response": lambda r, *args, _into=answered, **kwargs: _into.append(r)},
            )
        except Exception as e:
            if watch.fired:
                raise watch.too_slow() from None
            if not isinstance(e, ValueError) or isinstance(e, requests.RequestException):
                raise  # InvalidURL, connection errors and kin: handled by the caller
            if not answered:
                raise DownloadError(
                    f"{show_url(url)}: the request could not be sent ({type(e).__name__})"
                ) from None
            # requests reads a redirect's Location even when not following it.
            answered[0].close()
            raise DownloadError(
                f"{show_url(url)}: the answer redirects to an invalid URL ({redact(str(e))})"
            ) from None
        finally:
            _watch.reset(token)
        if watch.fired:  # what arrived before the cut looks complete to http.client, and is not
            resp.close()
            raise watch.too_slow()
        if not resp.is_redirect:
            return resp, watch.sock
        resp.close()
        try:
            target = urljoin(url, resp.headers["Location"])
        except ValueError:
            target = resp.headers["Location"]
        # A server may not make zoo read a local file or speak another protocol.
        if not is_remote(_split(target, where=f"{show_url(url)} redirects to ").geturl()):
            raise DownloadError(f"{show_url(url)}: redirects to {show_url(target)}, which is not http(s)")
        url = target
    raise DownloadError(f"{show_url(url)}: more than {MAX_REDIRECTS} redirects")


class _Watch:
    """The moment by which the answer to one request must have its status line and headers, and whether
    that moment passed (the socket was then shut down, which ends the blocked read)."""

    def __init__(self, until: float) -> None:
        self.until = until
        self.seconds = max(0.0, until - time.monotonic())
        self.fired = False
        self.sock: socket.socket | None = None

    def too_slow(self) -> _Retry:
        return _Retry(f"the server did not send its status line and headers within {self.seconds:.3g} s")


_watch: ContextVar[_Watch | None] = ContextVar("zoo_header_watch", default=None)


class _Cut:
    """Whether `_cut_at` shut its socket down. Then what was read is not to be believed: after the shutdown
    http.client takes the end of the stream for the end of the headers, or of a body without a length."""

    fired = False


@contextlib.contextmanager
def _cut_at(sock: socket.socket | None, until: float) -> Iterator[_Cut]:
    """Within the block, shut `sock` down when `until` (monotonic) passes, so a read blocked on a server that
    trickles returns (a read timeout cannot: every byte restarts it)."""
    state = _Cut()
    if sock is None or math.isinf(until):
        yield state
        return

    def cut() -> None:
        state.fired = True
        with contextlib.suppress(OSError):
            # The plain socket's shutdown, also for a TLS socket: it wakes the reader without touching the
            # TLS state the reading thread is using.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    timer = threading.Timer(max(0.0, until - time.monotonic()), cut)
    timer.daemon = True
    timer.start()
    try:
        yield state
    finally:
        timer.cancel()


def _watched_getresponse(conn: object, getresponse: object) -> object:
    # Runs in the connection's getresponse, the call that reads the status line and headers.
    watch = _watch.get()
    sock = getattr(conn, "sock", None)
    if watch is None or not isinstance(sock, socket.socket):
        return getresponse()  # type: ignore[operator]
    watch.sock = sock
    with _cut_at(sock, watch.until) as cut:
        try:
            return getresponse()  # type: ignore[operator]
        finally:
            watch.fired = cut.fired


_adapter_class: type | None = None


def _session() -> requests.Session:
    """A requests session whose connections put the header phase of every answer under a deadline."""
    global _adapter_class
    import requests

    if _adapter_class is None:
        import urllib3
        from requests.adapters import HTTPAdapter
        from urllib3 import connection, connectionpool

        class Conn(connection.HTTPConnection):
            def getresponse(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
                return _watched_getresponse(self, lambda: super(Conn, self).getresponse(*args, **kwargs))

        class TLSConn(connection.HTTPSConnection):
            def getresponse(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
                return _watched_getresponse(self, lambda: super(TLSConn, self).getresponse(*args, **kwargs))

        class Pool(connectionpool.HTTPConnectionPool):
            ConnectionCls = Conn

        class TLSPool(connectionpool.HTTPSConnectionPool):
            ConnectionCls = TLSConn

        pools = {"http": Pool, "https": TLSPool}

        class Adapter(HTTPAdapter):
            def init_poolmanager(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
                super().init_poolmanager(*args, **kwargs)
                self.poolmanager.pool_classes_by_scheme = pools

            def proxy_manager_for(self, proxy: str, **kwargs: object) -> object:  # type: ignore[override]
                manager = super().proxy_manager_for(proxy, **kwargs)
                if isinstance(manager, urllib3.ProxyManager):  # not SOCKS: it has pool classes of its own
                    manager.pool_classes_by_scheme = pools
                return manager

        _adapter_class = Adapter
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _adapter_class())
    return session


def _copy_local(url: str, part: _Partial) -> None:
    parts = urlsplit(url)
    source = Path(url2pathname(parts.path)) if parts.scheme == "file" else Path(url)
    if not source.is_file():  # checked first: a `.part` left by an http source stays resumable
        raise DownloadError(f"{show_url(url)}: no such file")
    part.reset()
    try:
        fd = part.open()
    except _Retry:  # a file planted at the part's name since the reset: it is gone now, one more try
        fd = part.open()
    try:
        with open(source, "rb") as src:
            while chunk := src.read(CHUNK):
                part.add(fd, chunk)
    except OSError as e:
        part.reset()
        raise DownloadError(f"{show_url(url)}: {e.strerror or type(e).__name__}") from None
    finally:
        os.close(fd)
