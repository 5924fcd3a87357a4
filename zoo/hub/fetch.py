"""Fetching a hub archive through zoo.transfer, with each forge's token sent only to its own host.

`GITHUB_TOKEN` goes only to the `ZOO_GITHUB_URL` host and `GITLAB_TOKEN` (as GitLab's `PRIVATE-TOKEN`) only
to the `ZOO_GITLAB_URL` host; zoo.transfer never forwards them to a redirect on another host (GitHub sends
archives from codeload.github.com). Tokens never appear in messages, logs or the cache.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from . import transfer
from .errors import DownloadError, HubError
from .hub_specs import github_url, gitlab_url

_NOT_FOUND = re.compile(r"\bHTTP (401|403|404)\b")


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


def fetch(url: str, dst: Path, *, what: str, verbose: bool = False) -> None:
    """Download the archive at `url` to `dst` (http, https or file), placed atomically when complete.

    `what` names the spec in messages. Failures (HTTP 4xx, retries used up) become one HubError; a 404,
    401 or 403 says whether a token was sent, since forges answer 404 for a private repo without one.
    """
    headers = auth_headers(url)
    if verbose and transfer.is_remote(url):
        print(f"zoo: downloading {what} from {transfer.show_url(url)}", file=sys.stderr)
    try:
        transfer.download(
            url, dst, headers=headers, progress=None if verbose else False, offline=False, label=what
        )
    except DownloadError as e:
        hint = ""
        if _NOT_FOUND.search(str(e)):
            hint = (
                "; check the token's access to it"
                if headers
                else "; no such repo or ref, or a private repo: set GITHUB_TOKEN or GITLAB_TOKEN"
            )
        raise HubError(f"{what}: {e}{hint}") from None
