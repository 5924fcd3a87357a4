"""Small helpers every layer shares, written once: origins of URLs, URLs for display, names and labels for the
terminal (show_path, show_text), atomic text writes, commit ids. It imports only the standard library, so any
module of zoo may use it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

# A full git commit id: SHA-1 (40 hex digits) or SHA-256 (64), lower case as git prints it.
COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """The (scheme, host, port) a URL reaches, with the scheme's default port filled in and no user part."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number reaches nothing; it matches no other URL
        port = -1
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs reach the same scheme, host and port (the rule for where a token may go)."""
    return origin(a) == origin(b)


def show_url(url: str) -> str:
    """`url` for messages: without a user:password part, a query or a fragment (signed URLs and
    `?private_token=` carry secrets there). The one function every layer uses to display a URL."""
    try:
        parts = urlsplit(url)
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1], query="", fragment="").geturl()
    except ValueError:  # unparsable (an unclosed IPv6 bracket): strip the same parts by pattern
        return _QUERY.sub(r"\1", _USERINFO.sub(r"\1", url.split("#", 1)[0]))


# What a URL looks like inside other text: a scheme, then anything up to white space or a quote, less the
# punctuation that ends a sentence or a bracket around it.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+(?<![,.;:)\]])")
# user:password@ after `//` wherever it is (also in a URL urlsplit cannot read).
_USERINFO = re.compile(r"(//)[^/\s'\"<>@]*@")
# A query after a path, as urllib3 writes it without the host ("... with url: /f.bin?token=..."):
# the path is kept, the query dropped.
_QUERY = re.compile(r"(/[^\s'\"<>?#]*)[?#][^\s'\"<>]*")


def redact(text: str) -> str:
    """`text` (an exception's message, a server's answer) with every URL in it shown by `show_url`, and
    every query after a bare path (`/x?sig=...`, as urllib3 prints it) dropped, so no secret reaches a message."""
    text = _URL_IN_TEXT.sub(lambda m: show_url(m.group(0)), str(text))
    return _QUERY.sub(r"\1", _USERINFO.sub(r"\1", text))


def _read_umask() -> int:
    # Read once, at import (single-threaded): os.umask can only be read by setting it.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_text_atomic(path: str | os.PathLike, text: str, *, mode: int = 0o666) -> None:
    """Replace `path` with `text` in one rename, so readers see the old file or the new one, never a part.

    The temporary file has a unique name beside the target (threads and processes never share one) and is
    removed if anything fails. `mode` is masked by the umask, as for a file created with open().
    """
    path = Path(path)
    # A short name: the target's own may already be near the 255-byte limit of a file name.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".zoo-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode & ~_UMASK)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def show_path(path: str | os.PathLike) -> str:
    """`path` for messages and JSON: bytes that are not UTF-8 (a folder named in Latin-1) as `\\xNN`.

    Python decodes such names to lone surrogates, which print() and UTF-8 writers refuse with a
    UnicodeEncodeError; this text can always be printed.
    """
    text = os.fspath(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that did not come from a file name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def show_text(text: str | os.PathLike) -> str:
    """`text` (a label, a class or file name) for the terminal: show_path's escapes, and every character
    that is not printable (ESC, newline, carriage return, bidi overrides, other control and format
    characters) as a `\\xNN`/`\\uNNNN` escape.

    A label from someone else's weight file must not colour or clear the terminal, nor print a line that
    looks like zoo's own (`"cat\\nzoo: error: ..."`). JSON output keeps the real text: json.dumps escapes it.
    """
    shown = show_path(text)
    if shown.isprintable():
        return shown
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
