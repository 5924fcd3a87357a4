"""`zoo.download`: fetch a URL into a verified local file.

The file is streamed to `<name>.part` beside the target and hashed on the way. A dropped connection is
resumed with an HTTP Range request (also by a later process that finds the `.part` file); connection
errors, timeouts and 5xx answers are retried with exponential backoff; only a complete file whose hash
matches is renamed into place. A lock per target makes concurrent processes (torchrun ranks) download
once: the others wait, then find the finished file. The lock is an OS file lock, released by the kernel
when its holder dies, so a killed process leaves no stale lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

from filelock import FileLock, Timeout

from .._common import same_origin, show_url
from .._version import __version__
from ..errors import DownloadError, IntegrityError
from . import integrity, paths

if TYPE_CHECKING:
    import requests

# requests, urllib3 and tqdm load with the first transfer, not with every command that only asks whether
# zoo is offline or takes a lock (together 90 ms of `zoo --help`'s 210 ms here).

CHUNK = 1 << 20
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
RETRIES = 5
BACKOFF = 1.0  # seconds before the first retry; doubled for each further one
MAX_BACKOFF = 30.0
MAX_REDIRECTS = 10
_RETRY_STATUS = {408, 425, 429}
_sleep = time.sleep  # tests replace it to check the backoff without waiting


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


def lock_for(path: Path) -> FileLock:
    """The lock that guards writing, replacing and deleting `path` (`<path>.lock`)."""
    return FileLock(str(path) + ".lock")


def is_remote(url: str) -> bool:
    """Whether fetching `url` needs the network (http or https)."""
    return urlsplit(url).scheme in ("http", "https")


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
    `progress=None` shows a bar only when stderr is a terminal. `headers` (e.g. a token) are sent to the
    URL's own host only, never to a redirect target on another host. `label` names the file in warnings.
    """
    if is_offline(offline) and is_remote(url):
        raise DownloadError(f"offline (ZOO_OFFLINE or offline=True): not downloading {show_url(url)}")
    target = _target(url, dst)
    target.parent.mkdir(parents=True, exist_ok=True)
    show = sys.stderr.isatty() if progress is None else progress
    lock = lock_for(target)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if show:
            print(f"zoo: waiting for another process to finish {target.name}", file=sys.stderr)
        lock.acquire()
    try:
        if sha256 is not None and target.is_file():
            try:
                integrity.check(target, sha256, what=label or target.name)
                return target
            except IntegrityError:
                integrity.forget(target)
                target.unlink()
        path = _fetch(url, target, sha256=sha256, show=show, size=size, headers=headers or {})
        integrity.warn_if_partial(label or target.name, sha256)
        return path
    finally:
        lock.release()


def _target(url: str, dst: str | os.PathLike | None) -> Path:
    if dst is not None and not Path(dst).expanduser().is_dir():
        return Path(dst).expanduser()
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    # Decoded, a name could climb out of the folder (`..%2F..%2Fevil.pth`): only plain names are taken.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise DownloadError(f"cannot tell a safe file name from {show_url(url)}; pass dst=")
    return (Path(dst).expanduser() if dst is not None else paths.weights_dir()) / name


class _Partial:
    """The `.part` file and the running hash of the bytes it holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hash = hashlib.sha256()
        self.offset = 0
        self.resumed = False
        if path.is_file():  # left by a dropped transfer or a killed process: pick it up
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    self.hash.update(chunk)
                    self.offset += len(chunk)
            self.resumed = self.offset > 0

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
        self.hash = hashlib.sha256()
        self.offset = 0
        self.resumed = False

    def add(self, f, chunk: bytes) -> None:  # noqa: ANN001
        f.write(chunk)
        self.hash.update(chunk)
        self.offset += len(chunk)


def _fetch(
    url: str, target: Path, *, sha256: str | None, show: bool, size: int | None, headers: dict[str, str]
) -> Path:
    part = _Partial(target.with_name(target.name + ".part"))
    fresh_retry = part.resumed  # bytes from an earlier transfer may belong to an older file: one retry
    import requests

    with requests.Session() as session:
        while True:
            _transfer(session, url, part, show=show, size=size, headers=headers, name=target.name)
            actual = part.hash.hexdigest()
            if integrity.matches(sha256, actual):
                break
            part.reset()
            if not fresh_retry:
                raise IntegrityError(
                    f"{show_url(url)}: the downloaded file has sha256 {actual}, expected {sha256} "
                    "(deleted; the server sends a different file than the one expected)"
                )
            fresh_retry = False
    os.replace(part.path, target)
    integrity.remember(target, actual)
    return target


def _transfer(
    session: requests.Session,
    url: str,
    part: _Partial,
    *,
    show: bool,
    size: int | None,
    headers: dict[str, str],
    name: str,
) -> None:
    if not is_remote(url):
        _copy_local(url, part)
        return
    import requests
    import urllib3

    failures = 0
    while True:
        offset = part.offset
        try:
            _stream(session, url, part, show=show, size=size, headers=headers, name=name)
            return
        except _Retry as e:
            reason = str(e)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as e:
            if isinstance(e, _not_retried()):
                raise DownloadError(f"{show_url(url)}: {_first_line(e)}") from None
            reason = _reason(e)
        # A flaky link that makes progress each time is not given up on: only attempts in a row count.
        failures = 1 if part.offset > offset else failures + 1
        if failures > RETRIES:
            kept = f"; {part.offset} bytes kept in {part.path} for the next try" if part.offset else ""
            raise DownloadError(f"{show_url(url)}: {reason} (gave up after {RETRIES} retries{kept})")
        _sleep(min(MAX_BACKOFF, BACKOFF * 2 ** (failures - 1)))


def _not_retried() -> tuple[type[Exception], ...]:
    import requests

    return (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        requests.exceptions.SSLError,  # a certificate problem does not go away by waiting
    )


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
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _stream(
    session: requests.Session,
    url: str,
    part: _Partial,
    *,
    show: bool,
    size: int | None,
    headers: dict[str, str],
    name: str,
) -> None:
    from tqdm.auto import tqdm

    request_headers = {"Accept-Encoding": "identity"}  # byte offsets must be those of the file itself
    if part.offset:
        request_headers["Range"] = f"bytes={part.offset}-"
    with _get(session, url, headers, request_headers) as resp:
        status = resp.status_code
        if status >= 500 or status in _RETRY_STATUS:
            raise _Retry(f"HTTP {status} {resp.reason}")
        if status == 416 and part.offset:
            # The `.part` may already hold the whole file (killed between the last byte and the rename).
            if resp.headers.get("Content-Range", "").strip() == f"bytes */{part.offset}":
                return
            part.reset()
            raise _Retry("the server refused to resume; starting again")
        if status >= 400:
            raise DownloadError(f"{show_url(url)}: HTTP {status} {resp.reason}")
        total = _expected_total(resp, part)
        if size is not None and total is not None and total != size:
            part.reset()
            raise DownloadError(f"{show_url(url)}: the server announces {total} bytes, expected {size}")
        total = total if total is not None else size
        with (
            open(part.path, "ab") as f,
            tqdm(
                total=total, initial=part.offset, disable=not show, unit="B", unit_scale=True, desc=name
            ) as bar,
        ):
            for chunk in _chunks(resp):
                part.add(f, chunk)
                bar.update(len(chunk))
    if total is not None and part.offset < total:
        raise _Retry(f"the connection closed after {part.offset} of {total} bytes")
    if total is not None and part.offset > total:
        part.reset()
        raise DownloadError(f"{show_url(url)}: the server sent more than the {total} bytes it announced")


def _chunks(resp: requests.Response) -> Iterator[bytes]:
    # read1 returns what has arrived, so a dropped or stalled connection loses no byte received.
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:
        yield from resp.iter_content(1 << 16)
        return
    while chunk := read1(CHUNK):
        yield chunk


def _expected_total(resp: requests.Response, part: _Partial) -> int | None:
    if resp.status_code == 206:
        m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", "").strip())
        if m is None or int(m.group(1)) != part.offset:
            part.reset()
            raise _Retry("the server resumed at another offset; starting again")
        return int(m.group(2)) if m.group(2) != "*" else None
    if part.offset:  # the server ignored the Range header and sends the whole file
        part.reset()
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _get(
    session: requests.Session, url: str, headers: dict[str, str], request_headers: dict[str, str]
) -> requests.Response:
    # Redirects are followed by hand: the caller's headers (tokens) go to the first origin only, so
    # never to another host nor, in clear text, to http on the same host.
    first = url
    for _ in range(MAX_REDIRECTS + 1):
        same_host = same_origin(url, first)
        resp = session.get(
            url,
            headers={
                "User-Agent": f"zoo/{__version__}",
                **(headers if same_host else {}),
                **request_headers,
            },
            stream=True,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            allow_redirects=False,
        )
        if not resp.is_redirect:
            return resp
        url = urljoin(url, resp.headers["Location"])
        resp.close()
    raise DownloadError(f"{show_url(url)}: more than {MAX_REDIRECTS} redirects")


def _copy_local(url: str, part: _Partial) -> None:
    parts = urlsplit(url)
    source = Path(url2pathname(parts.path)) if parts.scheme == "file" else Path(url)
    if not source.is_file():  # checked first: a `.part` left by an http source stays resumable
        raise DownloadError(f"{url}: no such file")
    part.reset()
    try:
        with open(source, "rb") as src, open(part.path, "wb") as f:
            while chunk := src.read(CHUNK):
                part.add(f, chunk)
    except OSError as e:
        part.reset()
        raise DownloadError(f"{url}: {e.strerror or e}") from None
