"""A local forge for hub tests: real git repos, served as `git archive` zips on 127.0.0.1.

The same server answers the GitHub layout (`/{owner}/{repo}/archive/{ref}.zip`) and the GitLab archive API
(`/api/v4/projects/{id}/repository/archive.zip?sha={ref}`), records every request with its headers, and can
redirect, fail or stall on demand. Test modules import the fixtures by name.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

TOKEN = "s3cret-token"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Forge",
    "GIT_AUTHOR_EMAIL": "forge@example.invalid",
    "GIT_COMMITTER_NAME": "Forge",
    "GIT_COMMITTER_EMAIL": "forge@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

NETS_HUBCONF = '''
dependencies = ["torch"]

import torch

from models import VERSION
from models.layers import make_layer as _make_layer


def version():
    """The VERSION of this checkout."""
    return VERSION


def net(pretrained=False, width=4):
    """A small network; `pretrained` is accepted as torch.hub repos do."""
    return _make_layer(width)


def late():
    """Import more of the repo at call time."""
    from models.extra import EXTRA
    return EXTRA
'''


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity and no user configuration."""
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def nets_files(version: str) -> dict[str, str]:
    return {
        "hubconf.py": NETS_HUBCONF,
        # a relative import inside the repo's own package, as torch.hub repos have
        "models/__init__.py": f"from .layers import make_layer\n\nVERSION = {version!r}\n",
        "models/layers.py": "import torch\n\n\ndef make_layer(width):\n    return torch.nn.Linear(width, 2)\n",
        "models/extra.py": f"EXTRA = {version + '-extra'!r}\n",
    }


def make_repos(root: Path) -> dict[str, object]:
    """Create the forge's repos; return their commits by name."""
    nets = root / "nets"
    nets.mkdir(parents=True)
    git(nets, "init", "-q", "-b", "main")
    write_files(nets, nets_files("v1"))
    c1 = commit_all(nets, "v1")
    git(nets, "tag", "-a", "v1.0", "-m", "release 1.0")
    git(nets, "checkout", "-q", "-b", "dev")
    write_files(nets, nets_files("dev"))
    c_dev = commit_all(nets, "dev")
    git(nets, "checkout", "-q", "main")
    write_files(nets, nets_files("v2"))
    c2 = commit_all(nets, "v2")

    tools = root / "tools"
    tools.mkdir()
    git(tools, "init", "-q", "-b", "main")
    write_files(
        tools,
        {
            "hubconf.py": "from models import VERSION\n\n\ndef version():\n    return VERSION\n",
            "models/__init__.py": "VERSION = 'tools'\n",
            "utils.py": "NAME = 'tools-utils'\n",
        },
    )
    commit_all(tools, "tools")

    needs = root / "needs"
    needs.mkdir()
    git(needs, "init", "-q", "-b", "main")
    write_files(
        needs,
        {"hubconf.py": "dependencies = ['torch', 'zoo_forge_missing_a', 'zoo_forge_missing_b']\n"},
    )
    commit_all(needs, "needs")
    return {"dirs": {"nets": nets, "tools": tools, "needs": needs}, "v1": c1, "dev": c_dev, "v2": c2}


@dataclass
class Request:
    server: str
    path: str
    headers: dict[str, str]


@dataclass
class Forge:
    """The running forge: its URLs, repos, commits and the requests it has seen."""

    url: str
    other_url: str
    commits: dict[str, str]
    dirs: dict[str, Path]
    requests: list[Request] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before serving normally
    delay: float = 0.0
    serve_instead: dict[str, str] = field(default_factory=dict)  # ref asked for -> ref served (a lying forge)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # Public (GitHub layout) and GitLab names -> repo folder; "private" needs the token.
    github = {"alice/nets": "nets", "bob/tools": "tools", "carol/needs": "needs", "alice/private": "nets"}
    gitlab = {"group/sub/nets": "nets", "group/private": "nets"}
    private = {"alice/private", "group/private"}
    # GitHub-layout names answered with a 302 to another name on the same or the other server.
    redirects = {"moved/nets": ("other", "alice/nets"), "hop/private": ("same", "alice/private")}

    def archive_requests(self) -> list[Request]:
        return [r for r in self.requests if "archive" in r.path]

    def reset(self) -> None:
        self.requests.clear()
        self.fail_next.clear()
        self.serve_instead.clear()
        self.delay = 0.0


def _handler(forge: Forge, name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with forge.lock:
                forge.requests.append(Request(name, self.path, dict(self.headers.items())))
                status = forge.fail_next.pop(0) if forge.fail_next else None
            if forge.delay:
                time.sleep(forge.delay)
            if status:
                return self.reply(status, b"")
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            owner_repo, sep, ref = path.lstrip("/").partition("/archive/")
            if owner_repo in forge.redirects:
                which, target = forge.redirects[owner_repo]
                base = forge.url if which == "same" else forge.other_url
                self.send_response(302)
                self.send_header("Location", f"{base}/{target}/archive/{ref}")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            if path.startswith("/api/v4/projects/") and path.endswith("/repository/archive.zip"):
                project = unquote(parts.path[len("/api/v4/projects/") : -len("/repository/archive.zip")])
                ref = parse_qs(parts.query).get("sha", ["HEAD"])[0]
                token_ok = self.headers.get("PRIVATE-TOKEN") == TOKEN
                return self.archive(forge.gitlab.get(project), project, ref, token_ok)
            if sep and ref.endswith(".zip"):
                token_ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
                return self.archive(forge.github.get(owner_repo), owner_repo, ref[:-4], token_ok)
            self.reply(404, b"not found")

        def archive(self, repo: str | None, project: str, ref: str, token_ok: bool) -> None:
            if repo is None or (project in forge.private and not token_ok):
                return self.reply(404, b"not found")
            folder = forge.dirs[repo]
            ref = forge.serve_instead.get(ref, ref)
            try:
                git(folder, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
            except subprocess.CalledProcessError:
                return self.reply(404, b"no such ref")
            prefix = f"{project.rsplit('/', 1)[1]}-{ref.replace('/', '-')}/"
            data = subprocess.run(
                ["git", "archive", "--format=zip", f"--prefix={prefix}", ref],
                cwd=folder,
                env={**os.environ, **GIT_ENV},
                capture_output=True,
                check=True,
            ).stdout
            self.reply(200, data, "application/zip")

        def reply(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture(scope="session")
def forge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    made = make_repos(tmp_path_factory.mktemp("forge"))
    commits = {k: v for k, v in made.items() if k != "dirs"}
    forge = Forge("", "", commits, made["dirs"])
    servers = []
    for name in ("main", "other"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(forge, name))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
    forge.url = f"http://127.0.0.1:{servers[0].server_address[1]}"
    forge.other_url = f"http://127.0.0.1:{servers[1].server_address[1]}"
    yield forge
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def forge(forge_server: Forge, monkeypatch: pytest.MonkeyPatch) -> Forge:
    """The forge, with zoo pointed at it for both layouts, no tokens set, and a fresh request log."""
    forge_server.reset()
    monkeypatch.setenv("ZOO_GITHUB_URL", forge_server.url)
    monkeypatch.setenv("ZOO_GITLAB_URL", forge_server.url)
    for var in ("GITHUB_TOKEN", "GITLAB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return forge_server
