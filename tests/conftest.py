"""Shared fixtures: every test gets its own zoo home, torch home and (optionally) manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from faulty_server import FaultyServer
from PIL import Image

import zoo
from zoo.store import download
from zoo.weights import copies, manifest

# Registered before the import below, so pytest can still load it as a plugin with assertion rewriting.
pytest.register_assert_rewrite("secret_guard")
from secret_guard import PLANTED_SECRET  # noqa: E402,F401  (tests import it from here)

REPO_ROOT = Path(__file__).resolve().parent.parent

# The local git forge's fixtures, and the check that no test shows a planted secret.
pytest_plugins = ["forge", "secret_guard"]


@pytest.fixture(autouse=True)
def isolated_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo_home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for var in ("ZOO_MANIFEST", "ZOO_OFFLINE", "ZOO_WEIGHTS_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    # Each safetensors copy is a process of its own (about 1.5 s of CPU to import torch): only the tests of
    # copies (test_weights_safetensors_copies.py) switch them on.
    monkeypatch.setenv("ZOO_SAFETENSORS_COPIES", "0")
    # Retries keep their count but not their waiting; tests of the backoff itself set it back.
    monkeypatch.setattr(download, "BACKOFF", 0.001)
    yield tmp_path
    copies.wait()  # safetensors copies a load started in the background end with their test


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def test_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write weight files into the zoo cache and a manifest that knows them (with true hashes).

    Call it with `{key: (state_dict or path of a file to copy, extra_entry_fields)}` and optional
    `defaults`; it returns the cache folder. The real manifest's entries are kept, so the zoo's own keys still resolve.
    """
    cache = tmp_path / "zoo_home" / "weights"

    def write(
        entries: dict[str, tuple[dict[str, torch.Tensor] | Path, dict]],
        defaults: dict[str, str] | None = None,
    ) -> Path:
        data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
        cache.mkdir(parents=True, exist_ok=True)
        for key, (state_dict, extra) in entries.items():
            arch = key.split(".")[0]
            file_name = extra.pop("file_name", f"{key.replace('.', '-')}.pth")
            if isinstance(state_dict, Path):
                shutil.copyfile(state_dict, cache / file_name)
            else:
                torch.save(state_dict, cache / file_name)
            data["weights"][key] = {
                "arch": arch,
                "file_name": file_name,
                "urls": [f"http://127.0.0.1:9/{file_name}"],
                "sha256": sha256_of(cache / file_name),
                "size": (cache / file_name).stat().st_size,
                "meta": {"source": "test"},
                **extra,
            }
        data["defaults"].update(defaults or {})
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(data))
        monkeypatch.setenv("ZOO_MANIFEST", str(path))
        return cache

    return write


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    """A fault-injecting HTTP server on 127.0.0.1 (see tests/faulty_server.py)."""
    srv = FaultyServer().start()
    yield srv
    srv.stop()


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth, photo-like RGB image (gradients and blobs, not noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    channels = [np.sin(x * rng.uniform(2, 9) + y * rng.uniform(2, 9) + rng.uniform(0, 6)) for _ in range(3)]
    return Image.fromarray(((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8))


def image_folder(root: Path, classes: list[str], per_class: int, size: tuple[int, int] = (40, 36)) -> Path:
    """An ImageFolder of photo-like PNGs under `root`: one sub-folder per class, `per_class` images each."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            photo(*size, seed=per_class * c + i).save(root / name / f"{i}.png")
    return root


def photo_jpegs(folder: Path) -> list[Path]:
    """Five photo-like JPEGs in `folder`: landscape, portrait, square, 256 to 1200 pixels wide."""
    paths = []
    for i, (w, h) in enumerate([(640, 480), (300, 500), (1200, 900), (256, 256), (1000, 700)]):
        paths.append(folder / f"{i}.jpg")
        photo(w, h, seed=i).save(paths[-1], quality=92)
    return paths


GOLDEN_RETRIEVER = 207


@pytest.fixture
def favouring(test_manifest):
    """resnet18 weights whose head favours ImageNet class 207 (golden retriever) by a logit margin of 10."""
    torch.manual_seed(0)
    state = zoo.models.resnet18(weights=None, device="cpu").state_dict()
    state["fc.weight"] = torch.zeros_like(state["fc.weight"])
    state["fc.bias"] = torch.zeros(1000)
    state["fc.bias"][GOLDEN_RETRIEVER] = 10.0
    state["fc.bias"][1] = 5.0
    extra = {
        "categories": "imagenet1k",
        "transforms": {"preset": "image_classification", "crop_size": 224, "resize_size": 256},
    }
    test_manifest({"resnet18.test": (state, extra)})
    return "resnet18.test"


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process below it: torchrun starts its workers in sessions of their own, so
    killing its process group would leave them running (and finishing the job)."""
    import contextlib
    import os
    import signal

    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            children.append(int(entry))
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    for child in children:
        kill_tree(child)
