"""store.paths: settings expand `~` as torch does, and a folder that cannot be made is one clear error."""

from __future__ import annotations

import pytest

import zoo
from zoo.errors import StorageError
from zoo.store import paths


def test_zoo_home_expands_the_tilde_like_torch_home(server, tmp_path, monkeypatch):
    home, cwd = tmp_path / "user", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ZOO_HOME", "~/x")
    monkeypatch.chdir(cwd)
    server.files["/m.pth"] = b"weights"
    path = zoo.download(f"{server.url}/m.pth")
    assert path == home / "x" / "weights" / "m.pth" and path.read_bytes() == b"weights"
    assert paths.home() == home / "x"
    assert list(cwd.iterdir()) == []  # no folder named `~` in the working directory


def test_make_dirs_names_the_folder_and_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "f" / "home"))
    with pytest.raises(StorageError, match=r"cannot create the folder .*/f/home/weights: .*set ZOO_HOME"):
        paths.make_dirs(paths.weights_dir())


def test_the_mirror_folder_and_the_manifest_setting_expand_the_tilde(test_manifest, tmp_path, monkeypatch):
    import torch

    from zoo.weights import files, manifest

    cache = test_manifest({"mlp.tilde": ({"w": torch.zeros(1)}, {})})
    home = tmp_path / "user"
    (home / "mirror").mkdir(parents=True)
    name = zoo.get_weights("mlp.tilde").file_name
    (cache / name).rename(home / "mirror" / name)  # only the mirror has it now
    (home / "manifest.json").write_text(manifest.manifest_path().read_text())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ZOO_MANIFEST", "~/manifest.json")
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", "~/mirror")
    monkeypatch.chdir(tmp_path)
    assert manifest.manifest_path() == home / "manifest.json"
    path = files.verified_file(zoo.get_weights("mlp.tilde"), offline=True)
    assert path.read_bytes() == (home / "mirror" / name).read_bytes()
