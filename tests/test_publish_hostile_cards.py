"""`zoo publish` of a weight file whose card lies or cannot be written: refused with one ZooError before any
write, never published as an entry that can never load."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.cli import main
from zoo.errors import ZooError
from zoo.models.mlp import make_mlp
from zoo.publish import publish


def raw(fields: str) -> str:
    """A card as raw JSON text (NaN, Infinity and huge integers are kept as written)."""
    return '{"arch":"mlp",' + fields + "}"


@pytest.fixture
def checkpoint(tmp_path):
    """Write the tutorial's 3-class MLP with a raw JSON card (NaN and huge numbers are kept as written)."""
    torch.manual_seed(0)
    tensors = {k: v.contiguous() for k, v in make_mlp().state_dict().items()}

    def write(card: str, name: str = "ckpt.safetensors"):
        path = tmp_path / name
        save_file(tensors, str(path), metadata={"zoo.card": card})
        return path

    return write


def target(tmp_path):
    return {"out_dir": tmp_path / "pub" / "weights", "manifest": tmp_path / "pub" / "weights_manifest.json"}


HOSTILE_CARDS = {
    "NaN metrics": (raw('"metrics":{"acc":NaN}'), "must be plain JSON data"),
    "infinite settings": (raw('"settings":{"lr":Infinity}'), "must be plain JSON data"),
    "num_classes 5 for a 3-class head": (raw('"num_classes":5'), "num_classes 5, but its head has 3"),
    "num_classes 2**70": (raw(f'"num_classes":{2**70}'), "but its head has 3 outputs"),
    "4 categories for a 3-class head": (
        raw('"categories":["a","b","c","d"]'),
        "4 categories for a head of 3 outputs",
    ),
    "a preset that cannot be built": (
        raw('"transforms":{"preset":"image_classification","crop_size":8,"bogus":1}'),
        "its card's transforms: the preset image_classification has no field 'bogus'",
    ),
    "an unknown preset": (raw('"transforms":{"preset":"nope"}'), "unknown preset 'nope'"),
}


@pytest.mark.parametrize("card, message", HOSTILE_CARDS.values(), ids=HOSTILE_CARDS.keys())
def test_a_card_that_could_never_load_is_refused_before_any_write(tmp_path, checkpoint, card, message):
    path = checkpoint(card)
    with pytest.raises(ZooError, match=message):
        publish(path, name="mine", repo=tmp_path / "pub", **target(tmp_path))
    assert not (tmp_path / "pub").exists()


def test_the_cli_refuses_nan_metrics_in_one_line(capsys, tmp_path, checkpoint, monkeypatch):
    path = checkpoint(raw('"num_classes":3,"metrics":{"acc":NaN}'))
    monkeypatch.chdir(tmp_path)
    code = main(["publish", str(path), "--name", "mine"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"zoo: error: the card of {path} must be plain JSON data")
    assert not (tmp_path / "weights").exists() and not (tmp_path / "weights_manifest.json").exists()


@pytest.mark.parametrize(
    "kwargs, categories, message",
    [
        ({"num_classes": 5}, None, "num_classes 5, but its head has 3"),
        ({"num_classes": "3"}, None, "num_classes must be a whole number"),
        ({"num_classes": True}, None, "num_classes must be a whole number"),
        ({"hidden": 5}, None, "do not fit mlp"),
        ({"no_such_size": 3}, None, "no_such_size"),
        ({}, ["a", "b"], "2 categories for a head of 3 outputs"),
    ],
)
def test_arguments_that_would_publish_an_entry_that_cannot_load_are_refused(
    tmp_path, kwargs, categories, message
):
    with pytest.raises(ZooError, match=message):
        publish(make_mlp(), name="mine", arch="mlp", kwargs=kwargs, categories=categories, **target(tmp_path))
    assert not (tmp_path / "pub").exists()


def test_a_resnet_card_with_the_wrong_head_size_is_refused(tmp_path):
    net = zoo.get_model("resnet18", weights=None, num_classes=2)
    path = tmp_path / "r.safetensors"
    card = {"arch": "resnet18", "num_classes": 5, "categories": ["a", "b", "c", "d", "e"]}
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, str(path), {"zoo.card": json.dumps(card)}
    )
    with pytest.raises(ZooError, match="num_classes 5, but its head has 2 outputs"):
        publish(path, name="mine", **target(tmp_path))
    card = {"arch": "resnet18", "categories": ["a", "b", "c"]}
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, str(path), {"zoo.card": json.dumps(card)}
    )
    with pytest.raises(ZooError, match="3 categories for a head of 2 outputs"):
        publish(path, name="mine", **target(tmp_path))
    assert not (tmp_path / "pub").exists()


def test_a_card_that_agrees_with_its_head_publishes_and_loads_by_key(tmp_path, checkpoint, monkeypatch):
    path = checkpoint(raw('"num_classes":3,"categories":["x","y","z"],"metrics":{"acc":0.5}'))
    w = publish(path, name="mine", **target(tmp_path))
    assert w.kwargs == {"num_classes": 3} and w.categories == ["x", "y", "z"]
    monkeypatch.setenv("ZOO_MANIFEST", str(target(tmp_path)["manifest"]))
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(target(tmp_path)["out_dir"]))
    zoo.weights.manifest.load.cache_clear()
    try:
        model = zoo.get_model("mlp", weights="mlp.mine")
    finally:
        zoo.weights.manifest.load.cache_clear()
    x = torch.randn(2, 4)
    assert torch.equal(model(x), zoo.get_model("mlp", weights=path)(x))
