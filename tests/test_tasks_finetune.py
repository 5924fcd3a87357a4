"""zoo finetune: a synthetic two-class ImageFolder learnt well above chance in a few epochs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import image_folder
from PIL import Image

import zoo
from zoo.tasks import finetune
from zoo.tasks.finetuning import split_indices
from zoo.weights import cards


@pytest.fixture
def two_classes(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for name, color in (("reds", (210, 50, 40)), ("blues", (40, 60, 210))):
        (root / name).mkdir(parents=True)
        for i in range(12):
            a = np.clip(np.array(color) + rng.normal(0, 45, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / name / f"{i}.png")
    (root / "reds" / "notes.txt").write_text("not an image, not a sample")
    return root


def test_finetune_learns_and_writes_a_loadable_checkpoint(two_classes, tmp_path, capsys):
    out = tmp_path / "out"
    card = finetune(
        two_classes,
        out,
        model="resnet18",
        weights=None,
        epochs=4,
        batch_size=8,
        image_size=32,
        workers=0,
        device="cpu",
        lr=0.01,
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 4 and lines[0].startswith("Epoch 1/4: train loss ")
    assert card["categories"] == ["blues", "reds"] and card["num_classes"] == 2
    assert card["metrics"]["val_acc"] >= 0.8  # chance is 0.5
    saved = json.loads((out / "model.json").read_text())
    assert saved["metrics"] == card["metrics"] and saved["transforms"]["crop_size"] == 32
    model = zoo.get_model("resnet18", weights=out / "model.safetensors", device="cpu")
    assert model.fc.out_features == 2
    predictions = zoo.classify(
        [two_classes / "reds" / "0.png", two_classes / "blues" / "0.png"],
        model="resnet18",
        weights=out / "model.safetensors",
        device="cpu",
        topk=1,
    )
    assert [p[0][0] for p in predictions] == ["reds", "blues"]

    # The file carries its card: a copy elsewhere, without model.json and without model=, still knows
    # its architecture, class names and preprocessing.
    embedded = cards.embedded(out / "model.safetensors")
    assert embedded["arch"] == "resnet18" and embedded["categories"] == ["blues", "reds"]
    assert embedded["metrics"] == card["metrics"] and embedded["transforms"]["crop_size"] == 32
    copy = tmp_path / "shared" / "colors.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(out / "model.safetensors", copy)
    predictions = zoo.classify(
        [two_classes / "reds" / "0.png", two_classes / "blues" / "0.png"], weights=copy, device="cpu", topk=1
    )
    assert [p[0][0] for p in predictions] == ["reds", "blues"]


def test_freeze_backbone_trains_only_the_head_and_keeps_its_batchnorm_statistics(
    two_classes, tmp_path, test_manifest
):
    torch.manual_seed(0)
    base = zoo.get_model("resnet18", weights=None, device="cpu").state_dict()
    test_manifest({"resnet18.base": (base, {})})
    finetune(
        two_classes,
        tmp_path / "out",
        model="resnet18",
        weights="resnet18.base",
        epochs=1,
        batch_size=8,
        image_size=32,
        workers=0,
        device="cpu",
        freeze_backbone=True,
        log=lambda line: None,
    )
    tuned = zoo.get_model(
        "resnet18", weights=tmp_path / "out" / "model.safetensors", device="cpu"
    ).state_dict()
    assert torch.equal(tuned["layer1.0.conv1.weight"], base["layer1.0.conv1.weight"])
    assert tuned["fc.weight"].shape == (2, 512)
    assert torch.equal(tuned["bn1.running_mean"], base["bn1.running_mean"])


def test_split_is_stratified_and_deterministic():
    targets = [0] * 10 + [1] * 5
    train, val = split_indices(targets, 0.2, seed=1)
    assert sorted(train + val) == list(range(15)) and not set(train) & set(val)
    assert sum(targets[i] == 0 for i in val) == 2 and sum(targets[i] == 1 for i in val) == 1
    assert split_indices(targets, 0.2, seed=1) == (train, val)


def test_bad_data_folders(tmp_path):
    with pytest.raises(zoo.ZooError, match="no such folder"):
        finetune(tmp_path / "nope", tmp_path / "out", weights=None)
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(zoo.ZooError, match="at least two"):
        finetune(tmp_path / "one", tmp_path / "out", weights=None)


def test_googlenet_checkpoint_reloads_with_the_preprocessing_it_was_trained_with(two_classes, tmp_path):
    torch.manual_seed(0)
    finetune(
        two_classes,
        tmp_path / "g",
        model="googlenet",
        weights=None,
        epochs=1,
        batch_size=8,
        image_size=64,
        workers=0,
        device="cpu",
        val_fraction=0,
        log=lambda line: None,
    )
    card = json.loads((tmp_path / "g" / "model.json").read_text())
    assert card["metrics"]["val_acc"] is None  # no validation split: null, not NaN
    reloaded = zoo.get_model("googlenet", weights=tmp_path / "g" / "model.safetensors", device="cpu").eval()
    assert reloaded.transform_input is True and reloaded.aux1 is None


def test_files_that_are_not_images_are_skipped_with_a_note(two_classes, tmp_path):
    (two_classes / "reds" / "broken.png").write_bytes(b"not a png")
    lines: list[str] = []
    finetune(
        two_classes,
        tmp_path / "out",
        model="resnet18",
        weights=None,
        epochs=1,
        batch_size=8,
        image_size=32,
        workers=0,
        device="cpu",
        log=lines.append,
    )
    assert lines[0].startswith("skipping 1 file(s) that are not images:") and "broken.png" in lines[0]


def test_resume_from_the_checkpoint_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    from safetensors.torch import load_file

    from zoo.cli import main

    data = image_folder(tmp_path / "data", ["a", "b"], 6, size=(36, 36))
    common = ["finetune", str(data), "--weights", "none", "--freeze-backbone", "--batch-size", "4"]
    common += ["--val-fraction", "0.25", "--image-size", "32", "--workers", "0", "--device", "cpu"]
    assert main([*common, "--epochs", "3", "-o", str(tmp_path / "whole")]) == 0
    assert main([*common, "--epochs", "2", "-o", str(tmp_path / "cut")]) == 0  # as if stopped after epoch 2
    assert main([*common, "--epochs", "3", "-o", str(tmp_path / "cut"), "--resume"]) == 0
    whole, cut = (load_file(tmp_path / d / "model.safetensors") for d in ("whole", "cut"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    history = json.loads((tmp_path / "cut" / "model.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    # Another run's checkpoint is refused, not silently continued.
    assert main([*common, "--epochs", "4", "--lr", "0.5", "-o", str(tmp_path / "cut"), "--resume"]) == 1
