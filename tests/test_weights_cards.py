"""zoo.weights.cards: a weight file's card in its safetensors metadata, JSON sidecars, local_file."""

from __future__ import annotations

import json
import shutil

import torch
from safetensors.torch import save_file

from zoo.models.mlp import make_mlp
from zoo.weights import cards
from zoo.weights.selection import local_file

CARD = {"arch": "mlp", "categories": ["a", "b", "c"], "metrics": {"acc": 0.5}, "num_classes": 3}


def tensors():
    return {k: v.contiguous() for k, v in make_mlp().state_dict().items()}


def test_a_card_in_the_safetensors_metadata_survives_a_copy_to_another_name(tmp_path):
    save_file(tensors(), str(tmp_path / "model.safetensors"), metadata=cards.metadata(CARD))
    copy = tmp_path / "elsewhere" / "renamed.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(tmp_path / "model.safetensors", copy)
    assert cards.embedded(copy) == CARD and cards.read_card(copy) == CARD


def test_the_card_metadata_is_one_string_key_and_deterministic():
    meta = cards.metadata(CARD)
    assert list(meta) == [cards.CARD_KEY] and isinstance(meta[cards.CARD_KEY], str)
    assert cards.metadata(dict(reversed(list(CARD.items())))) == meta


def test_a_json_sidecar_is_read_and_its_fields_win(tmp_path):
    save_file(tensors(), str(tmp_path / "model.safetensors"), metadata=cards.metadata(CARD))
    (tmp_path / "model.json").write_text(json.dumps({"categories": ["x", "y", "z"]}))
    card = cards.read_card(tmp_path / "model.safetensors")
    assert card["categories"] == ["x", "y", "z"] and card["arch"] == "mlp"


def test_a_pth_file_gets_its_card_from_a_file_name_json_sidecar(tmp_path):
    torch.save(make_mlp().state_dict(), tmp_path / "net.pth")
    assert cards.read_card(tmp_path / "net.pth") == {}
    (tmp_path / "net.pth.json").write_text(json.dumps({"arch": "mlp"}))
    assert cards.read_card(tmp_path / "net.pth") == {"arch": "mlp"}


def test_files_without_a_card_or_not_safetensors_at_all_have_an_empty_card(tmp_path):
    save_file(tensors(), str(tmp_path / "plain.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "list.safetensors").write_bytes(b"")
    for name in ("plain", "junk", "missing", "list"):
        assert cards.read_card(tmp_path / f"{name}.safetensors") == {}


def test_local_file_names_existing_files_but_never_keys_or_tags(tmp_path, monkeypatch):
    torch.save(make_mlp().state_dict(), tmp_path / "net.pth")
    assert local_file(tmp_path / "net.pth") == tmp_path / "net.pth"
    assert local_file(str(tmp_path / "net.pth")) == tmp_path / "net.pth"
    monkeypatch.chdir(tmp_path)
    assert local_file("net.pth") is not None
    for value in (None, "DEFAULT", "resnet18.imagenet1k_v1", "imagenet1k_v1", "missing.pth", 3):
        assert local_file(value) is None
