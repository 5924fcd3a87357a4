"""End to end: fine-tune, publish into a git repo, serve it from the local forge, load it back exactly."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import zoo
from zoo import hub
from zoo.tasks import finetune


def test_finetune_publish_serve_and_load(forge, tmp_path, monkeypatch):
    from forge import commit_all, git  # after pytest has loaded it as a plugin

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for name, color in (("amber", (230, 160, 20)), ("teal", (20, 150, 150))):
        (data / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(np.array(color) + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(data / name / f"{i}.png")
    torch.manual_seed(0)
    finetune(
        data,
        tmp_path / "run",
        model="resnet18",
        weights=None,
        epochs=1,
        batch_size=4,
        image_size=32,
        workers=0,
        device="cpu",
        log=lambda line: None,
    )

    repo = tmp_path / "published"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    w = zoo.publish(
        tmp_path / "run",
        name="colors",
        out_dir=tmp_path / "artifacts",
        manifest=tmp_path / "manifest.json",
        repo=repo,
        meta={"docs": "Amber or teal"},
    )
    assert zoo.check_repo(repo) == []
    commit_all(repo, "publish resnet18.colors")
    monkeypatch.setitem(forge.dirs, "published", repo)
    monkeypatch.setitem(forge.github, "me/published", "published")

    entry = "resnet18_colors"
    by_zoo = zoo.load("me/published:main", entry, pretrained=True, trust_repo=True, device="cpu").eval()
    snapshot = hub.resolve_repo("me/published:main", trust_repo=True, offline=True)
    by_torch = torch.hub.load(str(snapshot), entry, source="local", pretrained=True, device="cpu").eval()
    reference = zoo.get_model("resnet18", weights=tmp_path / "run" / "model.safetensors", device="cpu").eval()

    x = torch.stack([w.transforms()(Image.open(p).convert("RGB")) for p in sorted(data.rglob("*.png"))])
    with torch.inference_mode():
        expected = reference(x)
        assert torch.equal(by_zoo(x), expected) and torch.equal(by_torch(x), expected)
    assert by_zoo.categories == ["amber", "teal"]
    assert zoo.help("me/published:main", entry, trust_repo=True).startswith("Amber or teal.")
