"""Integrity records are a cache of a hash, never evidence against a file; a changed file is always caught."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch

import zoo
from zoo.errors import IntegrityError
from zoo.models.mlp import make_mlp
from zoo.store import integrity, paths

FILE = "mlp-mine.pth"
DATA = bytes(range(256)) * 64
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def cached(test_manifest):
    """A good mlp weight file in the zoo cache, known to a manifest whose only URL reaches nothing."""
    reference = make_mlp()
    test_manifest({"mlp.mine": (reference.state_dict(), {"file_name": FILE})}, defaults={"mlp": "mlp.mine"})
    return paths.weights_dir() / FILE, reference


def _plant_record(path, sha256):
    """Overwrite the record of `path` with one whose stamp matches the file but whose digest is `sha256`."""
    path = path.absolute()
    record = integrity._record_path(path)
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "ctime_ns": st.st_ctime_ns}
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"path": str(path), **stamp, "sha256": sha256}))
    integrity._memo.clear()  # as a new process would start


def test_a_corrupted_record_never_makes_zoo_delete_a_good_file(cached, monkeypatch):
    path, reference = cached
    zoo.get_model("mlp", weights="mlp.mine")  # verified once: its record is written
    _plant_record(path, "0" * 64)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    model = zoo.get_model("mlp", weights="mlp.mine")
    assert torch.equal(model.output_layer.weight, reference.output_layer.weight)
    assert path.is_file()
    assert integrity.known_digest(path) == integrity.sha256_file(path)  # the record was put right


def test_a_corrupted_record_never_makes_download_replace_a_good_target(server, tmp_path):
    server.files["/f.bin"] = DATA
    target = zoo.download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=DIGEST)
    _plant_record(target, "f" * 64)
    assert zoo.download(f"{server.url}/f.bin", target, sha256=DIGEST) == target
    assert len(server.requests_for("/f.bin")) == 1 and target.read_bytes() == DATA


def test_check_hashes_the_file_before_calling_it_bad(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    integrity.remember(path, "e" * 64)  # wrong, as a planted record would be
    assert integrity.check(path, DIGEST, what="f") == DIGEST
    with pytest.raises(IntegrityError, match=f"has sha256 {DIGEST}, expected {'a' * 64}"):
        integrity.check(path, "a" * 64, what="f")


def test_a_file_rewritten_in_place_with_its_mtime_restored_is_detected(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    integrity.check(path, DIGEST, what="f")
    st = path.stat()
    with open(path, "r+b") as f:  # same size, same inode
        f.write(b"\xff" * 16)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    integrity._memo.clear()
    assert integrity.known_digest(path) is None
    with pytest.raises(IntegrityError):
        integrity.check(path, DIGEST, what="f")


def test_marking_a_file_used_keeps_its_digest_known(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    integrity.remember(path, DIGEST)
    integrity.mark_used(path)
    integrity._memo.clear()
    assert integrity.known_digest(path) == DIGEST


@pytest.mark.parametrize(
    "content",
    [
        b"[1, 2, 3]",
        b"not json at all",
        b'{"path": 1, "size": "big", "mtime_ns": null, "ino": [], "ctime_ns": {}, "sha256": 5}',
        b"{" + b" " * (1 << 20) + b"}",
    ],
    ids=["not-an-object", "not-json", "wrong-types", "huge"],
)
def test_a_bad_record_is_ignored(tmp_path, content):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    record = integrity._record_path(path.absolute())
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_bytes(content)
    assert integrity.known_digest(path) is None
    assert integrity.check(path, DIGEST, what="f") == DIGEST


def test_a_fifo_planted_as_a_record_does_not_block(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    record = integrity._record_path(path.absolute())
    record.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(record)
    assert integrity.known_digest(path) is None


@pytest.mark.parametrize("content", ['["a"]', '{"k": "not a digest", "j": 5}', "{"])
def test_bad_pins_are_ignored(content):
    pins = paths.home() / "pins.json"
    pins.parent.mkdir(parents=True, exist_ok=True)
    pins.write_text(content)
    assert integrity.pins() == {}
