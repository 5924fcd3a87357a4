"""Cached remote hub loads: zoo.load("owner/repo:ref", entry) against torch.hub.load(snapshot, source="local").

A git repo with a torch.hub-style hubconf (its own `models` package, `dependencies`, `pretrained=`) is
archived with `git archive` and served at the GitHub layout from 127.0.0.1; zoo fetches it once, then every
timed zoo load comes from its cache. torch.hub loads the very same snapshot folder as a local repo, so both
run the same code. Two settings, each timed back to back per round (who goes first alternates), medians reported:

- first load in a fresh process (one subprocess per round and side, timed around the call only);
- repeated loads in one process.

Network calls during the timed zoo loads are counted (socket connects); the target is zero.

    python bench/hub.py [--rounds 7] [--entry resnet18]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zoo  # noqa: E402

HUBCONF = '''
dependencies = ["torch", "torchvision"]

from models.nets import build_resnet18, build_tiny


def tiny(pretrained=False):
    """A two-layer MLP."""
    return build_tiny()


def resnet18(pretrained=False, **kwargs):
    """torchvision's ResNet-18, random weights."""
    return build_resnet18(**kwargs)
'''

NETS = """
import torch
import torchvision


def build_tiny():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def build_resnet18(**kwargs):
    return torchvision.models.resnet18(weights=None, **kwargs)
"""

# Run in a fresh interpreter: imports first (not timed), then one load, timed, printed as JSON.
CHILD = """
import json, socket, sys, time
import torch, torchvision, zoo
side, spec, snapshot, entry = sys.argv[1:]
connects = []
real_connect = socket.socket.connect
socket.socket.connect = lambda self, addr: (connects.append(addr), real_connect(self, addr))[1]
start = time.perf_counter()
if side == "zoo":
    zoo.load(spec, entry, verbose=False)
else:
    torch.hub.load(snapshot, entry, source="local", verbose=False)
print(json.dumps({"seconds": time.perf_counter() - start, "connects": len(connects)}))
"""


def make_repo(root: Path) -> Path:
    """A one-commit git repo holding the bench's hubconf and its `models` package."""
    repo = root / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "hubconf.py").write_text(HUBCONF)
    (repo / "models" / "__init__.py").write_text("")
    (repo / "models" / "nets.py").write_text(NETS)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=repo, check=True)
    return repo


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve(repo: Path, root: Path) -> ThreadingHTTPServer:
    """Serve the repo's `git archive` zip at /bench/hubrepo/archive/main.zip on 127.0.0.1."""
    www = root / "www" / "bench" / "hubrepo" / "archive"
    www.mkdir(parents=True)
    with open(www / "main.zip", "wb") as out:
        subprocess.run(
            ["git", "archive", "--format=zip", "--prefix=hubrepo-main/", "main"],
            cwd=repo,
            stdout=out,
            check=True,
        )
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root / "www")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ConnectCounter:
    """Counts socket connects (every HTTP request of requests/urllib3 makes one, or reuses a pool's)."""

    def __init__(self) -> None:
        self.count = 0
        self._real = socket.socket.connect

    def __enter__(self) -> ConnectCounter:
        real = self._real

        def counting(sock, address):
            self.count += 1
            return real(sock, address)

        socket.socket.connect = counting
        return self

    def __exit__(self, *exc: object) -> None:
        socket.socket.connect = self._real


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fresh_process(side: str, spec: str, snapshot: Path, entry: str) -> tuple[float, int]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, side, spec, str(snapshot), entry],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["seconds"], data["connects"]


def row(what: str, th: list[float], zz: list[float]) -> None:
    t, z = statistics.median(th), statistics.median(zz)
    print(f"{what:<34} {t * 1e3:>10.2f}ms {z * 1e3:>9.2f}ms {(z - t) * 1e3:>+10.2f}ms {t / z:>7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--entry", nargs="+", default=["tiny", "resnet18"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["ZOO_HOME"] = str(root / "zoo_home")
        os.environ["TORCH_HOME"] = str(root / "torch_home")
        server = serve(make_repo(root), root)
        os.environ["ZOO_GITHUB_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
        spec = "bench/hubrepo:main"
        with ConnectCounter() as first:  # the one download; it also trusts the repo
            zoo.load(spec, "tiny", trust_repo=True, verbose=False)
        snapshot = zoo.hub.resolve_repo(spec)
        os.sync()
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.rounds} rounds")
        print(f"snapshot: {snapshot.relative_to(root)}")
        print(f"{'entry / setting':<34} {'torch.hub':>12} {'zoo':>11} {'zoo - hub':>12} {'ratio':>8}")
        connects = 0
        for entry in args.entry:

            def in_process(side: str, e: str = entry) -> tuple[float, int]:
                if side == "torch":
                    return timed(lambda: torch.hub.load(str(snapshot), e, source="local", verbose=False)), 0
                with ConnectCounter() as counter:
                    seconds = timed(lambda: zoo.load(spec, e, verbose=False))
                return seconds, counter.count

            (
                in_process("torch"),
                in_process("zoo"),
            )  # warm-up: first imports are the fresh-process row's subject
            for what, measure in (
                ("first load, fresh process", lambda side, e=entry: fresh_process(side, spec, snapshot, e)),
                ("repeated load, one process", in_process),
            ):
                th, zz = [], []
                for i in range(args.rounds):
                    # Who goes first alternates, so that drift in the machine's speed hits both sides alike.
                    for side in ("torch", "zoo") if i % 2 == 0 else ("zoo", "torch"):
                        seconds, n = measure(side)
                        (th if side == "torch" else zz).append(seconds)
                        connects += n
                row(f"{entry}: {what}", th, zz)
        server.shutdown()
        print(
            f"network calls: {first.count} during the first (downloading) load, {connects} during the timed ones"
        )
        shutil.rmtree(root / "www")


if __name__ == "__main__":
    main()
