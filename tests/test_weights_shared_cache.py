"""A zoo cache shared by many processes (torchrun ranks): a file without a digest record is hashed once."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import torch

import zoo
from zoo.store import integrity
from zoo.weights import files as weight_files


def _verify_counting_hashes(key: str, log: str, start) -> None:
    original = integrity.sha256_file

    def counted(path):
        with open(log, "a") as f:
            f.write(f"{path}\n")
        return original(path)

    integrity.sha256_file = counted
    start.wait(30)
    weight_files.verified_file(zoo.get_weights(key))


def test_a_cached_file_without_a_record_is_hashed_by_one_process_while_the_others_wait(
    test_manifest, tmp_path
):
    cache = test_manifest({"mlp.shared": ({"w": torch.zeros(512, 512)}, {})})
    path = cache / "mlp-shared.pth"
    last_used = path.stat().st_mtime - 3600  # an hour ago: the first use marks it, moving its ctime
    os.utime(path, (last_used, path.stat().st_mtime))
    assert integrity.known_digest(path) is None
    log = tmp_path / "hashes.log"
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_verify_counting_hashes, args=("mlp.shared", str(log), start)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    hashed = [Path(line) for line in log.read_text().splitlines()]
    assert hashed == [path]  # one hash; the other three found the record it left
