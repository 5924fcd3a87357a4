"""Fetching a hub archive over HTTP(S) or from a file URL, with tokens sent only to their own host.

Redirects are followed here, not by `requests`, so that each hop decides afresh which token (if any) its
host may see: `GITHUB_TOKEN` goes only to the `ZOO_GITHUB_URL` host, `GITLAB_TOKEN` only to the
`ZOO_GITLAB_URL` host. Tokens never appear in messages, logs or the cache.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import requests

from .errors import HubError
from .hub_specs import github_url, gitlab_url

TIMEOUT = (10.0, 60.0)  # connect, read (between bytes), seconds
RETRIES = 3
BACKOFF = 0.5  # seconds before the first retry; doubled each time
MAX_REDIRECTS = 10
_RETRY_STATUS = {429, 500, 502, 503, 504}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def auth_headers(url: str) -> dict[str, str]:
    """The token headers that `url`'s host may receive: only the forge's own token, only on its own host."""
    headers = {}
    token = os.environ.get("GITHUB_TOKEN")
    if token and _origin(url) == _origin(github_url()):
        headers["Authorization"] = f"Bearer {token}"
    token = os.environ.get("GITLAB_TOKEN")
    if token and _origin(url) == _origin(gitlab_url()):
        headers["PRIVATE-TOKEN"] = token
    return headers


def _redacted(url: str) -> str:
    # Query strings of signed redirect URLs can carry short-lived credentials.
    return url.split("?", 1)[0]


def _get(session: requests.Session, url: str) -> requests.Response:
    """GET `url` following redirects by hand, retrying connection errors and 5xx with backoff."""
    for _ in range(MAX_REDIRECTS + 1):
        for attempt in range(RETRIES + 1):
            try:
                response = session.get(
                    url, headers=auth_headers(url), stream=True, timeout=TIMEOUT, allow_redirects=False
                )
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt == RETRIES:
                    raise HubError(
                        f"cannot reach {_redacted(url)} ({type(e).__name__}); check the network, or use "
                        "offline=True / ZOO_OFFLINE=1 for cached repos"
                    ) from None
            else:
                if response.status_code not in _RETRY_STATUS or attempt == RETRIES:
                    break
                response.close()
            time.sleep(BACKOFF * 2**attempt)
        if response.is_redirect:
            url = urljoin(url, response.headers["location"])
            response.close()
            continue
        return response
    raise HubError(f"too many redirects fetching {_redacted(url)}")


def fetch(url: str, dst: Path, *, what: str, verbose: bool = False) -> None:
    """Download `url` to `dst` through a temporary file beside it, placed atomically when complete.

    `what` names the thing fetched in errors (a spec, never a URL with credentials). HTTP 404 and 401/403
    are not retried and become one HubError; so do exhausted retries.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if urlsplit(url).scheme == "file":
                path = Path(url2pathname(urlsplit(url).path))
                if not path.is_file():
                    raise HubError(f"{what}: no archive at {path}")
                with open(path, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            else:
                if verbose:
                    print(f"zoo: downloading {what} from {_redacted(url)}", file=sys.stderr)
                _stream(url, out, what)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _stream(url: str, out, what: str) -> None:
    with requests.Session() as session:
        session.headers["User-Agent"] = "zoo-hub"
        response = _get(session, url)
        with response:
            status = response.status_code
            if status in (401, 403, 404):
                hint = (
                    "; if the repo is private, set GITHUB_TOKEN or GITLAB_TOKEN"
                    if not auth_headers(response.url)
                    else "; check the token's access"
                )
                raise HubError(f"{what} not found: HTTP {status} from {_redacted(response.url)}{hint}")
            if status != 200:
                raise HubError(f"{what}: HTTP {status} from {_redacted(response.url)}")
            try:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)
            except (requests.ConnectionError, requests.Timeout) as e:
                raise HubError(f"{what}: connection lost during download ({type(e).__name__})") from None
