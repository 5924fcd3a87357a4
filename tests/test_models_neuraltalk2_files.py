"""Loading the book's three files by path: fc-model.pth, fc-infos.pkl and resnet101.pth (synthetic, small)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_models_neuraltalk2_infos import INFOS, OPT, Namespace, p0

import zoo
from zoo.errors import InvalidArgumentError, UnsafeCheckpointError, WeightsMismatchError, ZooError
from zoo.models.neuraltalk2 import NeuralTalk2

SIZES = {"input_encoding_size": 8, "rnn_size": 6, "layers": (1, 2, 1, 1), "width": 8}


def book_files(tmp_path: Path, **opt_changes: object) -> tuple[NeuralTalk2, dict[str, Path]]:
    """A small captioner saved as the book's three files: decoder and encoder state dicts, infos pickle."""
    torch.manual_seed(0)
    model = NeuralTalk2(["a", "horse", "UNK"], **SIZES).eval()
    files = {
        "weights": tmp_path / "fc-model.pth",
        "encoder": tmp_path / "resnet101.pth",
        "infos": tmp_path / "fc-infos.pkl",
    }
    torch.save(model.decoder.state_dict(), files["weights"])
    torch.save(model.encoder.state_dict(), files["encoder"])
    opt = {**OPT, "input_encoding_size": 8, "rnn_size": 6, "fc_feat_size": 256, **opt_changes}
    files["infos"].write_bytes(p0({**INFOS, "opt": Namespace(opt)}) + b".")
    return model, files


def test_the_books_three_files_load_by_path_and_give_the_same_captions(tmp_path):
    original, files = book_files(tmp_path)
    model = zoo.get_model("neuraltalk2", **{k: str(v) for k, v in files.items()})
    assert model.vocab == ["a", "horse", "UNK"] and not model.training
    assert len(model.decoder.state_dict()) == 9
    for k, v in original.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, msg=k)
    x = torch.randn(2, 3, 80, 72)
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), original.features(x))
        assert model.decode(model.features(x)) == original.decode(original.features(x))


def test_the_infos_options_set_what_the_files_do_not(tmp_path):
    _, files = book_files(tmp_path, seq_length=5, beam_size=1)
    model = zoo.get_model("neuraltalk2", **files)
    assert model.decoder.seq_length == 5


def test_a_weights_file_without_the_encoder_or_the_vocabulary_says_what_is_missing(tmp_path):
    _, files = book_files(tmp_path)
    with pytest.raises(InvalidArgumentError, match="encoder="):
        zoo.get_model("neuraltalk2", weights=files["weights"], infos=files["infos"])
    with pytest.raises(InvalidArgumentError, match="infos="):
        zoo.get_model("neuraltalk2", weights=files["weights"], encoder=files["encoder"])


def test_a_vocabulary_of_another_size_than_the_weights_is_a_mismatch(tmp_path):
    _, files = book_files(tmp_path)
    with pytest.raises(WeightsMismatchError, match="3 words"):
        zoo.get_model("neuraltalk2", weights=files["weights"], encoder=files["encoder"], vocab=["a", "UNK"])


def test_an_encoder_that_does_not_fit_the_decoder_is_named(tmp_path):
    _, files = book_files(tmp_path)
    torch.save(NeuralTalk2(["a"], layers=(1, 1, 1, 1), width=4).encoder.state_dict(), files["encoder"])
    with pytest.raises(WeightsMismatchError, match="features"):
        zoo.get_model("neuraltalk2", **files)


def test_a_hostile_infos_file_stops_the_load(tmp_path):
    _, files = book_files(tmp_path)
    files["infos"].write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(UnsafeCheckpointError):
        zoo.get_model("neuraltalk2", **files)


def test_infos_for_another_caption_model_are_refused(tmp_path):
    _, files = book_files(tmp_path, caption_model="topdown")
    with pytest.raises(ZooError, match="FC model"):
        zoo.get_model("neuraltalk2", **files)


def test_a_missing_file_is_named(tmp_path):
    _, files = book_files(tmp_path)
    with pytest.raises(ZooError, match="encoder file not found"):
        zoo.get_model("neuraltalk2", **{**files, "encoder": tmp_path / "resnet101a.pth"})


def test_infos_alone_build_a_random_captioner_with_the_books_vocabulary(tmp_path):
    _, files = book_files(tmp_path)
    model = zoo.get_model("neuraltalk2", weights=None, infos=files["infos"], layers=(1, 1, 1, 1), width=8)
    assert model.vocab == ["a", "horse", "UNK"]
    assert model.decoder.embed.weight.shape == (4, 8)


def test_a_whole_scene_captioner_saved_as_one_file_loads_with_its_sizes_read_from_it(tmp_path):
    torch.manual_seed(0)
    sizes = {"backbone": "scenes", "width": 4, "feature_size": 24, "input_encoding_size": 8, "rnn_size": 6}
    original = NeuralTalk2(["red", "circle", "UNK"], **sizes).eval()
    torch.save(original.state_dict(), tmp_path / "scenes.pth")
    model = zoo.get_model("neuraltalk2", weights=tmp_path / "scenes.pth", vocab=["red", "circle", "UNK"])
    assert model.encoder.feature_size == 24 and model.decoder.rnn_size == 6
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert model.decode(model.features(x)) == original.decode(original.features(x))


def test_an_unknown_backbone_is_refused():
    with pytest.raises(InvalidArgumentError, match="backbone must be one of caffe_resnet, scenes"):
        zoo.get_model("neuraltalk2", weights=None, vocab=["a", "UNK"], backbone="vgg")
