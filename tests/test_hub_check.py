"""zoo check: a hub repo reviewed as a maintainer would, one line per problem."""

from __future__ import annotations

import json

import pytest
import torch

from zoo import check_repo
from zoo.cli import main
from zoo.hub import check
from zoo.weights import manifest

GOOD = '''
"""A tiny hub repo."""
dependencies = ["torch"]

import torch


def net(pretrained: bool = False, **kwargs):
    """A linear layer."""
    return torch.nn.Linear(2, 2)
'''


def repo_with(tmp_path, hubconf: str):
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "hubconf.py").write_text(hubconf)
    return repo


def test_a_good_repo_passes(tmp_path, capsys):
    repo = repo_with(tmp_path, GOOD)
    assert check_repo(repo) == []
    assert main(["check", str(repo)]) == 0 and capsys.readouterr().out.strip().endswith(": ok")


def test_every_problem_is_one_line(tmp_path, capsys):
    repo = repo_with(
        tmp_path,
        GOOD.replace('dependencies = ["torch"]', "")
        + '''
from pathlib import Path


class Helper:
    pass


def undocumented(pretrained=False):
    return torch.nn.Linear(1, 1)


def broken(pretrained=False):
    """Fails."""
    raise RuntimeError("no such layer")


def settings(pretrained=False):
    """Not a model."""
    return {"lr": 0.1}


def no_pretrained():
    """Takes nothing."""
    return torch.nn.Linear(1, 1)
''',
    )
    problems = check_repo(repo)
    text = "\n".join(problems)
    assert "no `dependencies = [...]` list" in text
    assert "hubconf.py: Helper is a public helper" in text and "hubconf.py: Path is a public helper" in text
    assert "hubconf.py: undocumented has no docstring" in text
    assert "hubconf.py: broken(pretrained=False) fails: RuntimeError: no such layer" in text
    assert "hubconf.py: settings(pretrained=False) returns dict, not a model" in text
    assert "hubconf.py: no_pretrained does not take `pretrained`" in text
    assert len(problems) == 7
    assert main(["check", str(repo), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"] == problems


def test_network_at_import_and_missing_dependencies(tmp_path):
    repo = repo_with(
        tmp_path, GOOD + '\nimport urllib.request\nurllib.request.urlopen("http://127.0.0.1:9/x")\n'
    )
    (problem,) = check_repo(repo)
    assert "does not import without network: it tries to reach the network (socket.getaddrinfo" in problem
    repo = repo_with(tmp_path, GOOD.replace('["torch"]', '["torch", "no_such_module_xyz"]'))
    assert check_repo(repo) == [
        f"missing dependencies for {repo.resolve()}: no_such_module_xyz (pip install no_such_module_xyz)"
    ]


def test_bundled_weights_must_match_the_manifest(tmp_path):
    repo = repo_with(tmp_path, GOOD)
    (repo / "weights").mkdir()
    torch.save({"w": torch.zeros(2)}, repo / "weights" / "a.pth")
    (repo / "weights" / "b.pth").write_bytes(b"12345")
    data = {
        "schema_version": manifest.SCHEMA_VERSION,
        "defaults": {},
        "weights": {
            "net.a": {
                "arch": "net",
                "file_name": "a.pth",
                "sha256": "0" * 64,
                "size": (repo / "weights" / "a.pth").stat().st_size,
            },
            "net.b": {"arch": "net", "file_name": "b.pth", "sha256": "1234"},
            "net.c": {"arch": "net", "file_name": "c.pth", "sha256": "0" * 64, "size": 1},
        },
    }
    (repo / "weights_manifest.json").write_text(json.dumps(data))
    assert check_repo(repo) == [
        "weights_manifest.json: net.a: weights/a.pth does not match its sha256",
        "weights_manifest.json: net.b has no full sha256",
        "weights_manifest.json: net.b has no size",
        "weights_manifest.json: net.b: weights/b.pth does not match its sha256",
        "weights_manifest.json: net.c: weights/c.pth is missing and the entry has no URL",
    ]


def test_the_zoo_repo_passes_its_own_check():
    from conftest import REPO_ROOT

    assert check_repo(REPO_ROOT) == []
    # strict changes only what is read of the manifest: that part alone, without building every model again
    strict = check._check_manifest(REPO_ROOT, strict=True)  # upstream files known only by a hash prefix
    assert "weights_manifest.json: vit_b_16.imagenet1k_v1 has no full sha256" in strict
    assert not any(
        "resnet101.imagenet1k_v2 has no full sha256" in line for line in strict
    )  # issue 13's table
    assert not any("mlp.blobs" in line for line in strict)  # the bundled ones are complete


# --- hardening (issue 12): manifest entries that are not entries, file names that lead out of the repo ---


def manifest_repo(tmp_path, weights: dict) -> object:
    repo = repo_with(tmp_path, GOOD)
    data = {"schema_version": manifest.SCHEMA_VERSION, "defaults": {}, "weights": weights}
    (repo / "weights_manifest.json").write_text(json.dumps(data))
    return repo


def test_a_manifest_entry_that_is_not_an_object_is_a_problem_not_a_crash(tmp_path, capsys, monkeypatch):
    repo = manifest_repo(tmp_path, {"x.a": 5, "x.b": [1], "x.c": None, "x.d": "text"})
    problems = check._check_manifest(repo, strict=False)
    assert problems == [
        f"weights_manifest.json: weights manifest entry 'x.{tag}': must be an object, not a {kind}"
        for tag, kind in (("a", "number"), ("b", "list"), ("c", "null"), ("d", "string"))
    ]
    # the whole command: exit 1 and valid JSON (the repo's code run here, not in a child, to keep it fast)
    monkeypatch.setattr(check, "_run_in_child", check.run_code)
    assert main(["check", str(repo), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"] == problems


@pytest.mark.parametrize(
    "file_name", ["../../outside.bin", "../outside.bin", "/abs/outside.bin", "sub/x.bin", ".."]
)
def test_a_manifest_file_name_never_makes_check_read_outside_the_repo(tmp_path, monkeypatch, file_name):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"abc")
    (tmp_path / "repo" / "weights").mkdir(parents=True)
    repo = manifest_repo(
        tmp_path, {"x.a": {"arch": "x", "file_name": file_name, "sha256": "0" * 64, "size": 1}}
    )
    read = []
    real_digest = check.integrity.digest
    monkeypatch.setattr(check.integrity, "digest", lambda p, **kw: read.append(p) or real_digest(p, **kw))
    problems = check._check_manifest(repo, strict=True)
    assert len(problems) == 1 and "file_name" in problems[0] and "is not a plain file name" in problems[0]
    assert "bytes, the entry says" not in problems[0] and read == []


def test_a_bundled_file_that_links_out_of_the_repo_is_a_problem_and_not_read(tmp_path, monkeypatch):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"abc")
    repo = manifest_repo(
        tmp_path, {"x.a": {"arch": "x", "file_name": "a.bin", "sha256": "0" * 64, "size": 3}}
    )
    (repo / "weights").mkdir()
    (repo / "weights" / "a.bin").symlink_to(outside)
    monkeypatch.setattr(
        check.integrity, "digest", lambda *a, **kw: pytest.fail("read a file outside the repo")
    )
    assert check._check_manifest(repo, strict=True) == [
        "weights_manifest.json: x.a: weights/a.bin is a link to a file outside the repo"
    ]
