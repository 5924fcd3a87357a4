"""A hostile or broken weights manifest (ZOO_MANIFEST) is one ManifestError everywhere, and writes nothing."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

import zoo
from zoo.cli import main
from zoo.errors import ManifestError
from zoo.models.mlp import make_mlp
from zoo.store import paths
from zoo.weights import files, manifest

BASE = manifest.read_raw(manifest.DEFAULT_MANIFEST)
GOOD_ENTRY = {
    "arch": "mlp",
    "file_name": "mlp-evil.pth",
    "urls": ["http://127.0.0.1:9/mlp-evil.pth"],
    "sha256": "ab" * 32,
    "size": 10,
    "categories": ["a", "b", "c"],
    "meta": {"metrics": {"blobs": {"acc@1": 99.0}}},
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_manifest(tmp_path: Path, monkeypatch, data: dict) -> Path:
    path = tmp_path / "hostile_manifest.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("ZOO_MANIFEST", str(path))
    return path


def with_entry(**fields) -> dict:
    """The shipped manifest plus `mlp.evil`, made the mlp default, with `fields` changed (None: removed)."""
    data = copy.deepcopy(BASE)
    entry = {**GOOD_ENTRY, **fields}
    data["weights"]["mlp.evil"] = {k: v for k, v in entry.items() if v is not None}
    data["defaults"]["mlp"] = "mlp.evil"
    return data


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("zoo: error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()


def test_a_climbing_file_name_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys, server):
    # Before the fix `zoo fetch` wrote the served file to ZOO_HOME/weights/../../escaped.pth, i.e. tmp_path.
    payload = b"not weights, but written where the manifest said"
    server.files["/escaped.pth"] = payload
    data = with_entry(file_name="../../escaped.pth", urls=[f"{server.url}/escaped.pth"], size=None)
    data["weights"]["mlp.evil"]["sha256"] = hashlib.sha256(payload).hexdigest()
    write_manifest(tmp_path, monkeypatch, data)
    before = files_under(tmp_path)
    code, out, err = run(capsys, "fetch", "mlp.evil")
    assert_one_line_error(code, err, "mlp.evil", "file_name", "../../escaped.pth")
    assert not (tmp_path / "escaped.pth").exists()
    assert files_under(tmp_path) == before  # nothing at all was written, inside the zoo home or out
    assert server.connections == 0


BAD_ENTRIES = {
    "file_name climbs": {"file_name": "../../x.pth"},
    "file_name absolute": {"file_name": "/tmp/x.pth"},
    "file_name has a folder": {"file_name": "sub/x.pth"},
    "file_name has a backslash": {"file_name": "..\\x.pth"},
    "file_name is dot-dot": {"file_name": ".."},
    "file_name is dot": {"file_name": "."},
    "file_name is empty": {"file_name": ""},
    "file_name is missing": {"file_name": None},
    "file_name is a number": {"file_name": 5},
    "file_name has a NUL": {"file_name": "x\0.pth"},
    "file_name has a newline": {"file_name": "x\n.pth"},
    "file_name is hidden": {"file_name": ".x.pth"},
    "file_name is a lock": {"file_name": "mlp-blobs.pth.lock"},
    "file_name is a part": {"file_name": "x.pth.part"},
    "file_name is too long": {"file_name": "x" * 300 + ".pth"},
    "file_name is a drive path": {"file_name": "C:x.pth"},
    "sha256 is not hex": {"sha256": "not-a-hash"},
    "sha256 is a number": {"sha256": 1234},
    "sha256 is missing": {"sha256": None},
    "sha256 is too long": {"sha256": "a" * 65},
    "size is negative": {"size": -1},
    "size is text": {"size": "10"},
    "size is a fraction": {"size": 1.5},
    "size is a boolean": {"size": True},
    "urls is a string": {"urls": "http://127.0.0.1:9/x.pth"},
    "urls holds a number": {"urls": [5]},
    "categories name nothing": {"categories": "no_such_list"},
    "categories hold numbers": {"categories": [1, 2]},
    "categories is a number": {"categories": 7},
    "arch is a number": {"arch": 5},
    "arch is missing": {"arch": None},
    "arch is not the key's": {"arch": "resnet18"},
    "transforms is a string": {"transforms": "image_classification"},
    "transforms has no preset": {"transforms": {"crop_size": 224}},
    "meta is a list": {"meta": [1]},
    "metrics are text": {"meta": {"metrics": {"blobs": "high"}}},
    "metrics of a data set are text": {"meta": {"metrics": {"blobs": {"acc": "high"}}}},
    "kwargs is a list": {"kwargs": [1]},
}


def hostile(case: str) -> dict:
    return with_entry(**BAD_ENTRIES[case])


OTHER_BAD = {
    "entry is a list": lambda: {**copy.deepcopy(BASE), "weights": {**BASE["weights"], "mlp.evil": [1]}},
    "default names no entry": lambda: {
        **copy.deepcopy(BASE),
        "defaults": {**BASE["defaults"], "mlp": "mlp.x"},
    },
    "default names another arch's weights": lambda: {
        **copy.deepcopy(BASE),
        "defaults": {**BASE["defaults"], "mlp": "resnet18.imagenet1k_v1"},
    },
    "default is a number": lambda: {**copy.deepcopy(BASE), "defaults": {**BASE["defaults"], "mlp": 5}},
    "key has no tag": lambda: {**copy.deepcopy(BASE), "weights": {**BASE["weights"], "mlp": GOOD_ENTRY}},
    "shared categories are a list": lambda: {**copy.deepcopy(BASE), "categories": [["a"]]},
    # Every ImageNet entry names this list; it is checked once per manifest, and still refused.
    "a shared list holds a number": lambda: {
        **copy.deepcopy(BASE),
        "categories": {**BASE["categories"], "imagenet1k": [*BASE["categories"]["imagenet1k"][:-1], 7]},
    },
}


@pytest.mark.parametrize("case", list(BAD_ENTRIES) + list(OTHER_BAD))
def test_a_hostile_entry_is_one_manifest_error_in_every_command(case, tmp_path, monkeypatch, capsys):
    data = hostile(case) if case in BAD_ENTRIES else OTHER_BAD[case]()
    write_manifest(tmp_path, monkeypatch, data)
    paths.weights_dir().mkdir(parents=True)  # so the cache commands read the manifest too
    before = files_under(tmp_path)
    for argv in (
        ["list"],
        ["info", "mlp"],
        ["fetch", "mlp"],
        ["cache", "ls"],
        ["cache", "verify"],
        ["cache", "prune", "--max-size", "0"],
    ):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "manifest")
    with pytest.raises(ManifestError):
        zoo.get_model("mlp", weights="DEFAULT")
    with pytest.raises(ManifestError):
        zoo.list_weights("mlp")
    assert files_under(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("folder", None),
        ("not UTF-8", b'{"schema_version": 1, "x": "\xff\xfe"}'),
        ("a list", b"[1, 2, 3]"),
        ("a number", b"42"),
        ("null", b"null"),
        ("deeply nested", b"[" * 100_000 + b"]" * 100_000),
        ("not JSON", b"{not json"),
        ("empty", b""),
    ],
)
def test_a_manifest_file_that_is_not_a_json_object_is_one_manifest_error(
    name, content, tmp_path, monkeypatch, capsys
):
    path = tmp_path / "manifest.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    monkeypatch.setenv("ZOO_MANIFEST", str(path))
    code, _, err = run(capsys, "list")
    assert_one_line_error(code, err, "manifest", str(path))
    with pytest.raises(ManifestError):
        zoo.get_model("mlp", weights="DEFAULT")


def test_a_manifest_fifo_is_refused_without_waiting(tmp_path, monkeypatch, capsys):
    fifo = tmp_path / "manifest.json"
    os.mkfifo(fifo)  # reading it would block until a writer comes

    def writer() -> None:  # so that a regression fails (reads "[]") instead of hanging the suite
        with contextlib.suppress(OSError), open(fifo, "w") as f:
            f.write("[]")

    threading.Thread(target=writer, daemon=True).start()
    monkeypatch.setenv("ZOO_MANIFEST", str(fifo))
    try:
        code, _, err = run(capsys, "list")
    finally:
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # lets the writer go
    assert_one_line_error(code, err, "not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_manifest_is_one_manifest_error(tmp_path, monkeypatch, capsys):
    path = write_manifest(tmp_path, monkeypatch, BASE)
    path.chmod(0)
    try:
        code, _, err = run(capsys, "list")
    finally:
        path.chmod(0o644)
    assert_one_line_error(code, err, "cannot read weights manifest")


def test_an_unknown_preset_is_a_manifest_error_when_transforms_are_asked_for(tmp_path, monkeypatch):
    write_manifest(tmp_path, monkeypatch, with_entry(transforms={"preset": "no_such_preset"}))
    w = zoo.get_weights("mlp.evil")
    with pytest.raises(ManifestError, match="no_such_preset"):
        w.transforms()
    write_manifest(tmp_path, monkeypatch, with_entry(transforms={"preset": "cyclegan", "bogus_arg": 1}))
    with pytest.raises(ManifestError, match="bogus_arg"):
        zoo.get_weights("mlp.evil").transforms()


def test_manifest_kwargs_that_build_nothing_are_a_manifest_error(tmp_path, monkeypatch, test_manifest):
    test_manifest({"mlp.odd": (make_mlp().state_dict(), {"kwargs": {"no_such_size": 3}})})
    with pytest.raises(ManifestError, match="mlp.odd: the manifest's kwargs"):
        zoo.get_model("mlp", weights="mlp.odd")
    with pytest.raises(TypeError):  # the caller's own typo stays the caller's TypeError, as in torchvision
        zoo.get_model("mlp", weights=None, no_such_size=3)


def test_a_weights_object_cannot_carry_a_climbing_file_name():
    w = zoo.get_weights("mlp.blobs")
    with pytest.raises(ManifestError, match="not a plain file name"):
        dataclasses.replace(w, file_name="../../../etc/x.pth")


def test_a_mirror_url_keeps_odd_file_names_inside_its_path_and_its_query(monkeypatch):
    w = dataclasses.replace(zoo.get_weights("mlp.blobs"), file_name="a b?c#d%.pth")
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", "http://127.0.0.1:9/mirror/?token=abc")
    assert files.mirror_url(w) == "http://127.0.0.1:9/mirror/a%20b%3Fc%23d%25.pth?token=abc"


def test_the_shipped_manifest_and_a_published_style_entry_still_load(tmp_path, monkeypatch):
    data = with_entry(file_name="mlp-evil-0123abcd.safetensors", size=None, categories=None, urls=[])
    data["weights"]["mlp.evil"]["sha256"] = "0123ABCD"  # a known prefix, any case
    write_manifest(tmp_path, monkeypatch, data)
    w = zoo.get_weights("mlp.evil")
    assert w.sha256 == "0123abcd" and w.sha256_is_prefix and w.size is None
    assert len(manifest.load(manifest.DEFAULT_MANIFEST).weights) == len(BASE["weights"])
