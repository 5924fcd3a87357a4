"""Download throughput: zoo.download against torch.hub.download_url_to_file, side by side.

A file of random bytes (256 MiB by default) is served by a threaded HTTP server on 127.0.0.1; each round
downloads it once with each client, both verifying the full sha256 (torch.hub checks a prefix of the
digest it computes, so it is given the whole digest). The order alternates between rounds, and the
median MB/s of the rounds is reported with the ratio zoo / torch.hub.

    python bench/download.py [--size-mb 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch.hub

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zoo  # noqa: E402
from zoo.store import integrity  # noqa: E402


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def copyfile(self, source, outputfile) -> None:  # noqa: ANN001
        # sendfile keeps the server out of the way, so the clients' own costs decide the figures.
        self.wfile.flush()
        self.connection.sendfile(source)


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // 2**20):
            chunk = os.urandom(2**20)
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["ZOO_HOME"] = str(tmp_path / "zoo_home")
        (tmp_path / "srv").mkdir()
        sha256 = make_file(tmp_path / "srv" / "blob.bin", args.size_mb * 2**20)
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path / "srv"))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/blob.bin"
        size = args.size_mb * 2**20
        out = tmp_path / "out"
        out.mkdir()

        def run_zoo() -> None:
            zoo.download(url, out / "zoo.bin", sha256=sha256, progress=False)

        def run_torch() -> None:
            torch.hub.download_url_to_file(url, str(out / "torch.bin"), hash_prefix=sha256, progress=False)

        def timed(fn) -> float:
            for name in ("zoo.bin", "torch.bin"):
                integrity.forget(out / name)
                (out / name).unlink(missing_ok=True)
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        timed(run_zoo), timed(run_torch)  # warm the page cache and lazy imports
        zz, th = [], []
        for i in range(args.rounds):
            pair = [(zz, run_zoo), (th, run_torch)]
            for times, fn in pair if i % 2 == 0 else reversed(pair):
                times.append(timed(fn))
        server.shutdown()
        mbs_zoo, mbs_torch = size / 2**20 / statistics.median(zz), size / 2**20 / statistics.median(th)
        print(
            f"{args.size_mb} MiB over 127.0.0.1, full sha256 verified by both, median of {args.rounds} rounds"
        )
        print(f"torch.hub.download_url_to_file {mbs_torch:8.0f} MB/s")
        print(f"zoo.download                   {mbs_zoo:8.0f} MB/s")
        print(f"ratio zoo / torch.hub          {mbs_zoo / mbs_torch:8.2f}x")


if __name__ == "__main__":
    main()
