"""What a hub spec (`repo_or_dir`) names: a local folder, a GitHub or GitLab repo at a ref, or an archive URL.

Parsing touches no network and no cache; it only decides where the code would come from.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from .._common import origin, redact, show_url
from ..errors import HubError, InvalidSpecError

SOURCES = ("github", "gitlab", "local", "url")
DEFAULT_GITHUB_URL = "https://github.com"
DEFAULT_GITLAB_URL = "https://gitlab.com"
HEAD = "HEAD"

ACCEPTED_FORMS = (
    "accepted forms: a directory holding hubconf.py; owner/repo; owner/repo:ref; "
    "gitlab:group/sub/repo[:ref]; an http(s):// or file:// URL of a .zip or .tar.gz archive"
)

# A path part of a repo name: what GitHub and GitLab allow, minus anything that could walk the cache.
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# Git's own ref rules, trimmed: no spaces, control characters, `..`, `~^:?*[\` or a leading `-`.
_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!/)(?!.*/$)[^\s~^:?*\[\\\x00-\x1f\x7f]+$")
_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class HubSpec:
    """A parsed hub spec.

    `kind` is one of SOURCES. `path` is `owner/repo` (GitHub) or `group/sub/repo` (GitLab); `ref` is the
    branch, tag or commit asked for (`HEAD` for the default branch); `base` is the forge's URL (GitHub or
    GitLab) or, for `url`, the archive's URL; `local` is the folder of a local repo.
    """

    kind: str
    path: str = ""
    ref: str = HEAD
    base: str = ""
    local: Path | None = None

    @property
    def is_remote(self) -> bool:
        """Whether loading it may need the network (everything but a local folder)."""
        return self.kind != "local"

    @property
    def display(self) -> str:
        """The spec as a user would write it, for messages: an archive URL without its query (signed URLs and
        `?private_token=` carry secrets there)."""
        if self.kind == "local":
            return str(self.local)
        if self.kind == "url":
            return show_url(self.base)
        prefix = "gitlab:" if self.kind == "gitlab" else ""
        suffix = "" if self.ref == HEAD else f":{self.ref}"
        return f"{prefix}{self.path}{suffix}"

    @property
    def on_default_host(self) -> bool:
        """Whether a GitHub or GitLab spec is on github.com or gitlab.com (not a server set by environment)."""
        if self.kind == "github":
            return same_server(self.base, DEFAULT_GITHUB_URL)
        return self.kind == "gitlab" and same_server(self.base, DEFAULT_GITLAB_URL)

    @property
    def trust_key(self) -> str:
        """The name a trust decision is recorded under: the repo without its ref, and with its server unless
        that is github.com or gitlab.com (`owner/repo`, `https://ghe.example/owner/repo`, `gitlab:group/repo`,
        `gitlab:https://gitlab.example/group/repo`); for an archive URL, the URL without its query."""
        if self.kind in ("github", "gitlab"):
            where = "" if self.on_default_host else f"{show_url(self.base)}/"
            return f"{'gitlab:' if self.kind == 'gitlab' else ''}{where}{self.path}"
        return self.display

    @property
    def archive_url(self) -> str:
        """Where the archive of this spec's ref is fetched from."""
        if self.kind == "github":
            return f"{self.base}/{self.path}/archive/{quote(self.ref, safe='/')}.zip"
        if self.kind == "gitlab":
            project = quote(self.path, safe="")
            url = f"{self.base}/api/v4/projects/{project}/repository/archive.zip"
            # Without `sha`, GitLab serves the default branch's tip.
            return url if self.ref == HEAD else f"{url}?sha={quote(self.ref, safe='')}"
        if self.kind == "url":
            return self.base
        raise HubError(f"{self.display} is a local folder; it has no archive")

    @property
    def host(self) -> str:
        """The cache folder name of the server (`github.com`, `127.0.0.1_8080`, `file` for file URLs)."""
        parts = urlsplit(self.base)
        if parts.scheme == "file":
            return "file"
        name = parts.netloc.rpartition("@")[2].replace(":", "_").lower()
        # An Enterprise server under a path prefix is another server than its host's root.
        prefix = parts.path.strip("/").replace("/", "_") if self.kind != "url" else ""
        return f"{name}_{prefix}" if prefix else name


def same_server(a: str, b: str) -> bool:
    """Whether two forge base URLs name the same server (scheme, host, port and path prefix)."""
    return origin(a) == origin(b) and urlsplit(a).path.rstrip("/") == urlsplit(b).path.rstrip("/")


def github_url() -> str:
    """The GitHub-layout forge: `ZOO_GITHUB_URL`, else https://github.com (InvalidSpecError naming the
    variable when it is not an http(s) URL with a host)."""
    return _server_url("ZOO_GITHUB_URL", DEFAULT_GITHUB_URL)


def gitlab_url() -> str:
    """The GitLab server: `ZOO_GITLAB_URL`, else https://gitlab.com (InvalidSpecError naming the variable
    when it is not an http(s) URL with a host)."""
    return _server_url("ZOO_GITLAB_URL", DEFAULT_GITLAB_URL)


def _server_url(var: str, default: str) -> str:
    url = (os.environ.get(var) or default).rstrip("/")
    # Checked here, once, so that every later urlsplit of it (origin, host, same_server, the token rule)
    # reads a URL that parses: `http://[bad` would otherwise be a ValueError traceback deep in a load.
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidSpecError(
            f"{var}={redact(url)!r} is not a URL: {e}; set it to https://HOST[/PREFIX]"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise InvalidSpecError(
            f"{var}={redact(url)!r} is not an http(s) URL of a server; set it to https://HOST[/PREFIX]"
        )
    return url


def _pathlike(text: str) -> bool:
    return text in (".", "..") or text.startswith(("/", "./", "../", "~", os.sep))


def _malformed(spec: str, why: str) -> InvalidSpecError:
    # redact: the spec may be a URL with a password or a `?private_token=` that is wrong only in its form.
    return InvalidSpecError(f"malformed hub spec {redact(spec)!r}: {why}; {ACCEPTED_FORMS}")


def _repo_path(spec: str, path: str, *, nested: bool) -> str:
    parts = path.split("/")
    if "" in parts:
        raise _malformed(spec, "empty name")
    if len(parts) < 2 or (len(parts) > 2 and not nested):
        want = "group/[sub/]repo" if nested else "owner/repo"
        raise _malformed(spec, f"expected {want}")
    for part in parts:
        if part in (".", "..") or not _NAME.match(part):
            raise _malformed(spec, f"{part!r} is not a valid name")
    return path


def _ref(spec: str, ref: str | None) -> str:
    if ref is None:
        return HEAD
    if not ref:
        raise _malformed(spec, "empty ref after ':'")
    if not _REF.match(ref) or ref.endswith((".lock", ".")) or "@{" in ref:
        raise _malformed(spec, f"{ref!r} is not a valid branch, tag or commit")
    return ref


def _split_ref(spec: str, rest: str) -> tuple[str, str | None]:
    if rest.count(":") > 1:
        raise _malformed(spec, "more than one ':'")
    path, colon, ref = rest.partition(":")
    return path, (ref if colon else None)


def _url(spec: str) -> HubSpec:
    try:
        parts = urlsplit(spec)
        port = parts.port  # read here: a port that is not a number fails later in origin() otherwise
    except ValueError as e:  # an unclosed IPv6 bracket, a port out of range
        raise _malformed(spec, f"not a URL ({e})") from None
    if port == 0:
        raise _malformed(spec, "port 0")
    if parts.scheme not in ("http", "https", "file"):
        raise _malformed(spec, f"URL scheme {parts.scheme!r} is not supported")
    if parts.scheme != "file" and not parts.netloc:
        raise _malformed(spec, "URL without a host")
    if parts.username or parts.password:
        # A credential in the URL would end up in the cache index and in messages.
        raise _malformed(spec, "credentials in the URL; use GITHUB_TOKEN or GITLAB_TOKEN")
    if " " in spec:
        raise _malformed(spec, "spaces in the URL")
    if not parts.path.lower().endswith(_ARCHIVE_SUFFIXES):
        raise _malformed(spec, "a URL must name a .zip or .tar.gz archive")
    return HubSpec("url", base=spec)


def _github_reading(spec: str) -> bool:
    try:
        path, ref = _split_ref(spec, spec)
        _repo_path(spec, path, nested=False)
        _ref(spec, ref)
    except HubError:
        return False
    return True


def parse_spec(repo_or_dir: str | os.PathLike[str], source: str | None = None) -> HubSpec:
    """Parse a hub spec; `source` ("github", "gitlab", "local", "url", in any case, as torch.hub reads
    "GitHub") forces how it is read.

    Without `source`, an existing directory is a local repo (with a warning when it is written like
    `owner/repo`), `gitlab:` names a GitLab project, a URL an archive, and `owner/repo[:ref]` a GitHub repo.
    Anything else fails with one message listing the forms. Every such error (and an unknown source) is an
    InvalidSpecError, which is a ValueError as torch.hub's are.
    """
    return _parse(repo_or_dir, source, warn=True)


def normalize_source(source: str | None) -> str | None:
    """`source` in lower case (torch.hub accepts "GitHub", "LOCAL"); InvalidSpecError if it is none of SOURCES."""
    if source is None:
        return None
    if not isinstance(source, str) or source.lower() not in SOURCES:
        raise InvalidSpecError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    return source.lower()


def _parse(
    repo_or_dir: str | os.PathLike[str], source: str | None, *, warn: bool, servers: bool = True
) -> HubSpec:
    source = normalize_source(source)
    if isinstance(repo_or_dir, os.PathLike):
        if source not in (None, "local"):
            raise InvalidSpecError(
                f"source={source!r} needs a spec string, not the path {os.fspath(repo_or_dir)!r}"
            )
        return HubSpec("local", local=Path(repo_or_dir).expanduser())
    spec = str(repo_or_dir)
    if not spec.strip():
        raise _malformed(spec, "empty")
    # Written as a path (absolute, ./, ../, ~): a local folder, even one that does not exist (for its error).
    if source == "local" or (source is None and _pathlike(spec)):
        return HubSpec("local", local=Path(spec).expanduser())
    if source is None and Path(spec).expanduser().is_dir():
        # torch.hub's reading too, but a folder that happens to be called `pytorch/vision` would silently
        # stand in for the GitHub repo: say so.
        if warn and _github_reading(spec):
            warnings.warn(
                f"{spec!r} is an existing folder, used as a local hub repo; it also reads as the GitHub repo "
                f"{spec}: pass source='github' for that, or write './{spec}' to say the folder",
                UserWarning,
                stacklevel=3,
            )
        return HubSpec("local", local=Path(spec).expanduser())
    if spec != spec.strip() or any(c.isspace() for c in spec):
        raise _malformed(spec, "spaces")
    if source == "url" or (source is None and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", spec)):
        return _url(spec)
    if source == "gitlab" or (source is None and spec.startswith("gitlab:")):
        path, ref = _split_ref(spec, spec.removeprefix("gitlab:"))
        base = gitlab_url() if servers else ""
        return HubSpec("gitlab", _repo_path(spec, path, nested=True), _ref(spec, ref), base)
    if source is None and "/" not in spec:
        raise _malformed(spec, "not an existing directory, and not owner/repo")
    path, ref = _split_ref(spec, spec)
    base = github_url() if servers else ""
    return HubSpec("github", _repo_path(spec, path, nested=False), _ref(spec, ref), base)


def looks_like_spec(text: str) -> bool:
    """Whether `text` names a hub repo rather than a model pattern: a remote spec, a path written as one
    (absolute, `./`, `~`), or a folder holding hubconf.py."""
    try:
        # The load that follows warns, once, and reports a server variable that is not a URL (naming it):
        # here only the spec's form counts.
        spec = _parse(text, None, warn=False, servers=False)
    except HubError:
        return False
    return spec.is_remote or _pathlike(text) or (spec.local / "hubconf.py").is_file()
