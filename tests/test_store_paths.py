"""store.paths: settings expand `~` as torch does, and a folder that cannot be made is one clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_zoo_runs_without_platformdirs_when_zoo_home_is_set(tmp_path):
    # The GPU machines lent to this project have torch but not platformdirs; bench/gpu.py sets ZOO_HOME.
    code = (
        "import sys; sys.modules['platformdirs'] = None\n"  # import platformdirs now raises ImportError
        "import zoo\n"
        "from zoo.store import paths\n"
        "from zoo.cli import main\n"
        "print(paths.home())\n"
        "model = zoo.get_model('resnet18', weights=None, device='cpu')\n"
        "main(['cache', 'ls'])\n"
        "print(type(model).__name__)\n"
    )
    env = {**os.environ, "ZOO_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(tmp_path / "home") and lines[-1] == "ResNet"


def test_without_zoo_home_the_home_is_platformdirs_user_cache_dir(monkeypatch):
    import platformdirs

    monkeypatch.delenv("ZOO_HOME", raising=False)
    assert paths.home() == Path(platformdirs.user_cache_dir("zoo"))
