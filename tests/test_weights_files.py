"""Resolution of manifest entries to verified files: order, verification, mirror, offline."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path

import pytest
import torch

import zoo
from zoo.errors import IntegrityError, WeightsNotFoundError
from zoo.models.mlp import make_mlp
from zoo.store import integrity, paths
from zoo.weights import files

FILE = "mlp-blobs.pth"


@pytest.fixture
def entry(test_manifest, server, tmp_path):
    """An mlp entry whose file is served at server/files/; returns (weights, file bytes, reference model)."""
    reference = make_mlp()
    zoo_cache = test_manifest(
        {"mlp.blobs": (reference.state_dict(), {"urls": [f"{server.url}/files/{FILE}"]})},
        defaults={"mlp": "mlp.blobs"},
    )
    data = (zoo_cache / FILE).read_bytes()
    (zoo_cache / FILE).unlink()
    server.files[f"/files/{FILE}"] = data
    return zoo.get_weights("mlp.blobs"), data, reference


def test_downloads_into_the_zoo_cache_and_builds(entry, server):
    w, data, reference = entry
    model = zoo.get_model("mlp", device="cpu")
    assert torch.equal(model.output_layer.weight, reference.output_layer.weight)
    assert (paths.weights_dir() / FILE).read_bytes() == data
    zoo.get_model("mlp", device="cpu")
    assert len(server.requests_for(f"/files/{FILE}")) == 1  # the second build finds the cached file


def test_a_corrupt_cached_file_is_deleted_and_fetched_again(entry, server):
    w, data, _ = entry
    cached = paths.weights_dir() / FILE
    cached.write_bytes(data[:-10] + b"0123456789")
    assert files.verified_file(w).read_bytes() == data
    assert len(server.requests_for(f"/files/{FILE}")) == 1


def test_bundled_file_is_used_before_the_network(entry, server, tmp_path, monkeypatch):
    w, data, _ = entry
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    (bundled / FILE).write_bytes(data)
    monkeypatch.setattr(files, "bundled_dir", lambda: bundled)
    assert files.verified_file(w) == bundled / FILE
    assert server.connections == 0


def test_torch_cache_file_is_verified_before_reuse(entry, server):
    w, data, _ = entry
    torch_cache = paths.torch_checkpoints_dir()
    torch_cache.mkdir(parents=True)
    (torch_cache / FILE).write_bytes(data)
    assert files.verified_file(w) == torch_cache / FILE
    assert server.connections == 0
    (torch_cache / FILE).write_bytes(b"x" * len(data))  # same size, other bytes, newer mtime
    os.utime(torch_cache / FILE, ns=(1, 10**18))
    assert files.verified_file(w) == paths.weights_dir() / FILE  # passed over, fetched instead
    assert (torch_cache / FILE).exists()  # torch's cache is not ours to delete


def test_http_mirror_comes_before_the_entry_urls(entry, server, monkeypatch):
    w, data, _ = entry
    server.files[f"/mirror/{FILE}"] = data
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", f"{server.url}/mirror/")
    assert files.verified_file(w).read_bytes() == data
    assert server.requests_for(f"/files/{FILE}") == [] and len(server.requests_for(f"/mirror/{FILE}")) == 1


def test_folder_mirror_works_offline(entry, server, tmp_path, monkeypatch):
    w, data, _ = entry
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / FILE).write_bytes(data)
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    assert files.verified_file(w).read_bytes() == data
    assert server.connections == 0


def test_offline_without_a_copy_says_how_to_get_one(entry, server, monkeypatch):
    w, _, _ = entry
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as info:
        zoo.get_model("mlp", device="cpu")
    message = str(info.value)
    assert FILE in message and "zoo fetch mlp.blobs" in message and "ZOO_WEIGHTS_MIRROR" in message
    assert server.connections == 0


def test_every_bad_source_is_named_in_one_error(entry, server, tmp_path, monkeypatch):
    w, data, _ = entry
    server.files[f"/mirror/{FILE}"] = b"not the weights"
    server.files[f"/files/{FILE}"] = data[::-1]
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", f"{server.url}/mirror")
    w = dataclasses.replace(w, size=None)  # let the wrong files through to the hash check
    with pytest.raises(IntegrityError) as info:
        files.verified_file(w)
    message = str(info.value)
    assert FILE in message and w.sha256 in message
    assert f"{server.url}/mirror/{FILE}" in message and f"{server.url}/files/{FILE}" in message
    assert hashlib.sha256(b"not the weights").hexdigest() in message
    assert not (paths.weights_dir() / FILE).exists()
    assert [p.name for p in paths.weights_dir().iterdir() if not p.name.endswith(".lock")] == []


def test_verification_is_remembered_until_the_file_changes(entry, monkeypatch):
    w, data, _ = entry
    path = files.verified_file(w)
    hashed: list[Path] = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: hashed.append(Path(p)) or real(p))
    integrity._memo.clear()  # as a new process would start
    assert files.verified_file(w) == path and hashed == []  # the stored record is enough
    with open(path, "r+b") as f:  # truncated in place
        f.truncate(len(data) - 1)
    with pytest.raises(IntegrityError, match=f"{path} has sha256 [0-9a-f]{{64}}, expected {w.sha256}"):
        files.verified_file(w, offline=True)
    # Hashed afresh to condemn it (never by the record), and again under the lock before deleting it.
    assert set(hashed) == {path} and not path.exists()


def test_prefix_only_entries_warn_once_and_can_be_pinned(entry, monkeypatch):
    w, data, _ = entry
    full = w.sha256
    w = dataclasses.replace(w, sha256=full[:7])
    with pytest.warns(UserWarning, match="mlp.blobs: only the sha256 prefix"):
        files.verified_file(w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        files.verified_file(w)
    integrity.pin("mlp.blobs", full)
    assert files.expected_sha256(w) == full
    integrity.pin("mlp.blobs", "f" * 64)  # a pin that contradicts the manifest is ignored
    assert files.expected_sha256(w) == full[:7]


def test_get_model_offline_argument_makes_no_connection(entry, server):
    with pytest.raises(WeightsNotFoundError, match="offline"):
        zoo.get_model("mlp", device="cpu", offline=True)
    assert server.connections == 0
    assert zoo.get_model("mlp", device="cpu", offline=False) is not None  # the setting does not stick


def test_a_wrong_size_is_reported_as_not_found(entry, server):
    w, data, _ = entry
    server.files[f"/files/{FILE}"] = data + b"extra"
    with pytest.raises(WeightsNotFoundError, match=f"announces {len(data) + 5} bytes, expected {len(data)}"):
        files.verified_file(w)


def test_hub_load_offline_reaches_the_weights(entry, server):
    repo = Path(__file__).resolve().parent.parent
    with pytest.raises(WeightsNotFoundError, match="offline"):
        zoo.load(str(repo), "mlp", pretrained=True, offline=True)
    assert server.connections == 0
