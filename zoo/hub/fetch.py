"""Fetching a hub archive through zoo.store.download, with each forge's token sent only to its own host.

`GITHUB_TOKEN` goes only to the `ZOO_GITHUB_URL` host and `GITLAB_TOKEN` (as GitLab's `PRIVATE-TOKEN`) only
to the `ZOO_GITLAB_URL` host; zoo.store.download never forwards them to a redirect on another host (GitHub sends
archives from codeload.github.com). Tokens never appear in messages, logs or the cache.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .._common import redact, same_origin, show_url
from ..errors import DownloadError, HubError
from ..store import download
from .specs import github_url, gitlab_url

_NOT_FOUND = re.compile(r"\bHTTP (401|403|404)\b")


def auth_headers(url: str) -> dict[str, str]:
    """The token headers that `url`'s host may receive: only the forge's own token, only on its own host."""
    headers = {}
    token = os.environ.get("GITHUB_TOKEN")
    if token and same_origin(url, github_url()):
        headers["Authorization"] = f"Bearer {token}"
    token = os.environ.get("GITLAB_TOKEN")
    if token and same_origin(url, gitlab_url()):
        headers["PRIVATE-TOKEN"] = token
    return headers


def fetch(url: str, dst: Path, *, what: str, verbose: bool = False) -> None:
    """Download the archive at `url` to `dst` (http, https or file), placed atomically when complete.

    `what` names the spec in messages. Failures (HTTP 4xx, retries used up) become one HubError; a 404,
    401 or 403 says whether a token was sent, since forges answer 404 for a private repo without one.
    """
    headers = auth_headers(url)
    if verbose and download.is_remote(url):
        print(f"zoo: downloading {what} from {show_url(url)}", file=sys.stderr)
    try:
        download.download(
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
        raise HubError(f"{what}: {redact(str(e))}{hint}") from None
