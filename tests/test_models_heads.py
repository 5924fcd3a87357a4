"""`num_classes=N` with pretrained weights replaces the right head in every family and keeps the backbone."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
from conftest import REPO_ROOT
from torchvision import models as tvm

import zoo
from zoo.tasks.classification import classes_of, head_of

CATALOGUE = json.loads((REPO_ROOT / "zoo" / "models" / "torchvision_catalogue.json").read_text())


def smallest_of_each_family() -> dict[str, str]:
    """One architecture per torchvision family (resnet, regnet, vision_transformer, ...): the smallest."""
    best: dict[str, tuple[int, str]] = {}
    for arch, info in CATALOGUE.items():
        size = zoo.get_weights(arch).meta["num_params"]
        if info["family"] not in best or size < best[info["family"]][0]:
            best[info["family"]] = (size, arch)
    return {family: arch for family, (_, arch) in sorted(best.items())}


FAMILIES = smallest_of_each_family()


def test_every_family_is_covered():
    assert len(FAMILIES) == 17
    assert FAMILIES["vision_transformer"] == "vit_b_16" and FAMILIES["squeezenet"] == "squeezenet1_1"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_num_classes_replaces_each_familys_head_and_keeps_the_pretrained_backbone(family, test_manifest):
    arch = FAMILIES[family]
    real = zoo.get_weights(arch)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in real.kwargs.items()}
    torch.manual_seed(0)
    state_dict = tvm.get_model(arch, weights=None, **kwargs).state_dict()
    test_manifest(
        {f"{arch}.test": (state_dict, {"kwargs": real.kwargs, "categories": "imagenet1k"})},
        defaults={arch: f"{arch}.test"},
    )
    heads = CATALOGUE[arch]["heads"]
    model = zoo.get_model(arch, num_classes=10, **({"aux_logits": True} if arch == "googlenet" else {}))

    for head in heads:
        layer = model.get_submodule(head)
        assert (layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels) == 10, head
        old = state_dict[f"{head}.weight"]
        assert layer.weight.shape[1:] == old.shape[1:], head
    backbone = {
        k: v for k, v in model.state_dict().items() if not k.startswith(tuple(f"{h}." for h in heads))
    }
    assert backbone.keys() == {k for k in state_dict if not k.startswith(tuple(f"{h}." for h in heads))}
    for key, value in backbone.items():
        assert torch.equal(value, state_dict[key]), key
    size = kwargs.get("image_size") or max(64, *real.meta["min_size"])
    with torch.inference_mode():
        assert model.eval()(torch.rand(1, 3, size, size)).shape == (1, 10)
    assert head_of(model) is model.get_submodule(heads[0])


def register_random(arch: str, test_manifest, **kwargs) -> dict[str, torch.Tensor]:
    """Random weights for `arch` as its default entry, with the real entry's kwargs and preset."""
    real = zoo.get_weights(arch)
    torch.manual_seed(0)
    state_dict = tvm.get_model(arch, weights=None, **kwargs).state_dict()
    extra = {"kwargs": real.kwargs, "categories": "imagenet1k", "transforms": real.transforms_spec}
    test_manifest({f"{arch}.test": (state_dict, extra)}, defaults={arch: f"{arch}.test"})
    return state_dict


@pytest.mark.parametrize(("arch", "crop"), [("squeezenet1_1", 224), ("inception_v3", 299)])
def test_classify_uses_the_head_and_preset_of_the_chosen_weights(arch, crop, test_manifest, tmp_path):
    from conftest import photo

    from zoo.tasks.classification import Classifier

    register_random(arch, test_manifest, **zoo.get_weights(arch).kwargs)
    classifier = Classifier(model=arch, device="cpu")
    assert list(classifier.transform.crop_size) == [crop]
    photo(320, 320).save(tmp_path / "p.png")
    (top,) = zoo.classify([tmp_path / "p.png"], model=arch, topk=3, device="cpu")
    assert len(top) == 3 and all(isinstance(label, str) for label, _ in top)


@pytest.mark.parametrize("arch", ["squeezenet1_1", "inception_v3"])
def test_finetune_works_with_a_conv_head_and_with_auxiliary_heads(arch, test_manifest, tmp_path):
    import numpy as np
    from PIL import Image

    from zoo.tasks import finetune

    register_random(arch, test_manifest, **zoo.get_weights(arch).kwargs)
    rng = np.random.default_rng(0)
    for name, color in (("reds", (210, 50, 40)), ("blues", (40, 60, 210))):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            a = np.clip(np.array(color) + rng.normal(0, 45, (96, 96, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(tmp_path / "data" / name / f"{i}.png")
    finetune(
        tmp_path / "data",
        tmp_path / "out",
        model=arch,
        epochs=1,
        batch_size=4,
        image_size=80,
        workers=0,
        device="cpu",
        log=lambda line: None,
    )
    tuned = zoo.get_model(arch, weights=tmp_path / "out" / "model.safetensors", device="cpu")
    assert classes_of(tuned) == 2
