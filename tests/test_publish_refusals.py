"""A refused `zoo publish` writes nothing; a failure midway puts every file back as it was."""

from __future__ import annotations

import json
import os
import threading

import pytest
import torch
from conftest import PLANTED_SECRET

import zoo
from zoo.cli import main
from zoo.errors import ZooError
from zoo.models.mlp import make_mlp
from zoo.weights import manifest


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def repo(tmp_path):
    """A hub repo that already serves one published entry, and a checkpoint to publish next."""
    root = tmp_path / "repo"
    torch.manual_seed(0)
    zoo.publish(
        make_mlp(),
        name="first",
        arch="mlp",
        out_dir=root / "weights",
        manifest=root / "weights_manifest.json",
        repo=root,
    )
    torch.save(make_mlp().state_dict(), tmp_path / "ckpt.pth")
    return root


def publish_next(repo, tmp_path, **overrides):
    args = {
        "name": "next",
        "arch": "mlp",
        "out_dir": repo / "weights",
        "manifest": repo / "weights_manifest.json",
        "repo": repo,
    }
    return zoo.publish(tmp_path / "ckpt.pth", **{**args, **overrides})


@pytest.mark.parametrize(
    "spoil, overrides, message",
    [
        (
            lambda r: r.joinpath("hubconf.py").write_text(
                r.joinpath("hubconf.py").read_text() + "\ndef broken(:\n"
            ),
            {},
            "not valid Python",
        ),
        (None, {"entry": "mlp_first"}, "already serves mlp.first"),
        (None, {"entry": "class"}, "invalid entry point name"),
        (lambda r: r.joinpath("weights_manifest.json").write_text("{not json"), {}, "not valid JSON"),
        (None, {"categories": ["ok", "caf\udce9", "x"]}, "not valid Unicode"),
        (None, {"arch": "resnet18"}, "resnet18"),
        (None, {"meta": {"docs": object()}}, "plain JSON"),
        (None, {"base_url": f"https://user:{PLANTED_SECRET}@files.example/w"}, "without credentials"),
        (None, {"base_url": f"https://files.example/w?sig={PLANTED_SECRET}"}, "without credentials"),
    ],
    ids=[
        "hubconf_syntax",
        "entry_clash",
        "entry_keyword",
        "manifest_json",
        "surrogates",
        "wrong_arch",
        "meta",
        "userinfo",
        "query",
    ],
)
def test_each_refusal_leaves_every_file_as_it_was(repo, tmp_path, spoil, overrides, message):
    if spoil:
        spoil(repo)
    before = tree(repo)
    staging = tmp_path / "zoo_home" / "tmp"
    with pytest.raises(ZooError, match=message) as info:
        publish_next(repo, tmp_path, **overrides)
    assert PLANTED_SECRET not in str(info.value)
    assert tree(repo) == before and not any(p.name.endswith(".tmp") for p in repo.rglob("*"))
    assert not staging.exists() or list(staging.iterdir()) == []


def test_a_manifest_write_failing_midway_rolls_back_the_weight_files_and_hubconf(repo, tmp_path, monkeypatch):
    before = tree(repo)
    real = manifest.write_raw
    calls = []

    def failing(data, path=None):
        calls.append(path)
        if len(calls) == 1:
            real(data, path)  # the first manifest is written ...
            return
        raise OSError(28, "No space left on device", str(path))  # ... the repo's one fails

    monkeypatch.setattr(manifest, "write_raw", failing)
    with pytest.raises(ZooError, match="No space left"):
        publish_next(repo, tmp_path, manifest=tmp_path / "other.json")
    assert tree(repo) == before and not (tmp_path / "other.json").exists()


def test_the_cli_refusal_is_one_line_and_json(repo, tmp_path, capsys):
    before = tree(repo)
    code = main(
        [
            "publish",
            str(tmp_path / "ckpt.pth"),
            "--arch",
            "mlp",
            "--name",
            "n",
            "--repo",
            str(repo),
            "--entry",
            "mlp_first",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1 and len(err.strip().splitlines()) == 1 and "already serves" in err
    assert "already serves" in json.loads(out)["error"] and tree(repo) == before


def test_an_output_folder_under_a_file_is_refused_before_any_write(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ZooError, match="is a file, not a folder"):
        zoo.publish(
            make_mlp(), name="t", arch="mlp", out_dir=tmp_path / "file" / "w", manifest=tmp_path / "m.json"
        )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "zoo_home") == ["file"]


def test_a_hubconf_that_is_a_fifo_is_refused_without_waiting(repo, tmp_path):
    hubconf = repo / "hubconf.py"
    hubconf.unlink()
    os.mkfifo(hubconf)
    before = sorted(p.name for p in repo.rglob("*"))
    outcome: list = []

    def attempt():
        try:
            publish_next(repo, tmp_path)
        except ZooError as e:
            outcome.append(e)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # let the blocked reader go before failing
        os.close(os.open(hubconf, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("publish waited on a FIFO named hubconf.py")
    assert outcome and "not a regular file" in str(outcome[0])
    assert sorted(p.name for p in repo.rglob("*")) == before


def test_a_linked_manifest_and_hubconf_are_updated_where_they_live(repo, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    for name in ("weights_manifest.json", "hubconf.py"):
        (repo / name).rename(real / name)
        (repo / name).symlink_to(real / name)
    publish_next(repo, tmp_path)
    for name in ("weights_manifest.json", "hubconf.py"):
        assert (repo / name).is_symlink(), f"{name}: the user's link was replaced by a copy"
    assert "mlp.next" in json.loads((real / "weights_manifest.json").read_text())["weights"]
    assert "def mlp_next(" in (real / "hubconf.py").read_text()
