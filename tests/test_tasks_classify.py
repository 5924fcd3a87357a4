"""zoo.classify: labels from the weights' categories, top-k order, batching, draft decoding, precision."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
from conftest import photo

import zoo
from zoo.tasks import Classifier, classification
from zoo.tasks.images import ImageError, open_image


@pytest.fixture
def images(tmp_path):
    paths = []
    for i, (w, h) in enumerate([(640, 480), (300, 500), (1200, 900), (256, 256), (1000, 700)]):
        paths.append(tmp_path / f"{i}.jpg")
        photo(w, h, seed=i).save(paths[-1], quality=92)
    return paths


def test_labels_come_from_the_weights_categories(favouring, images):
    (top,) = zoo.classify(images[0], model="resnet18", weights=favouring, topk=3, device="cpu")
    labels = [label for label, _ in top]
    assert labels[0] == "golden retriever" and labels[1] == "goldfish"
    expected = 100 * math.exp(10) / (math.exp(10) + math.exp(5) + 998)
    assert top[0][1] == pytest.approx(expected, abs=0.5)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True) and len(top) == 3


def test_batching_gives_the_same_numbers_as_one_by_one(favouring, images):
    classifier = Classifier("resnet18", favouring, device="cpu")
    batched = [p for _, p in classifier.run(images, topk=5, batch_size=4)]
    single = [p for _, p in classifier.run(images, topk=5, batch_size=1)]
    for a, b in zip(batched, single, strict=True):
        assert [x for x, _ in a] == [x for x, _ in b]
        assert [y for _, y in a] == pytest.approx([y for _, y in b], abs=1e-3)


def test_draft_decoding_changes_probabilities_only_slightly(tmp_path, monkeypatch):
    big = tmp_path / "big.jpg"
    photo(3200, 2400, seed=7).save(big, quality=92)
    torch.manual_seed(0)
    classifier = Classifier("resnet18", None, device="cpu")  # random weights: outputs depend on the image
    drafted = classifier.prepare(big)
    monkeypatch.setattr(classification, "open_image", lambda p, min_side=None: open_image(p))
    full = classifier.prepare(big)
    assert drafted.shape == full.shape == (3, 224, 224)
    assert 0 < (drafted - full).abs().mean() < 0.05  # the draft is used, and looks nearly the same
    with torch.inference_mode():
        logits_draft, logits_full = classifier.model(drafted[None]), classifier.model(full[None])
    assert (logits_draft - logits_full).abs().max() < 0.1 * logits_full.std()
    assert (torch.softmax(logits_draft, 1) - torch.softmax(logits_full, 1)).abs().max() < 0.005


def test_a_bad_file_names_itself(favouring, images, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(ImageError, match="bad.jpg"):
        zoo.classify([images[0], tmp_path / "bad.jpg"], model="resnet18", weights=favouring, device="cpu")
    outcomes = list(
        Classifier("resnet18", favouring, device="cpu").run([images[0], tmp_path / "bad.jpg", images[1]])
    )
    assert [type(o).__name__ for _, o in outcomes] == ["list", "ImageError", "list"]


def test_bf16_agrees_with_fp32(favouring, images):
    fp32 = zoo.classify(images[:2], model="resnet18", weights=favouring, device="cpu", topk=1)
    emulated = not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    with pytest.warns(UserWarning, match="emulated") if emulated else contextlib.nullcontext():
        bf16 = zoo.classify(
            images[:2], model="resnet18", weights=favouring, device="cpu", topk=1, precision="bf16"
        )
    assert [r[0][0] for r in bf16] == [r[0][0] for r in fp32]
    assert [r[0][1] for r in bf16] == pytest.approx([r[0][1] for r in fp32], abs=2)


def test_unknown_precision_is_refused(favouring):
    with pytest.raises(zoo.ZooError, match="unknown precision 'int3'"):
        Classifier("resnet18", favouring, device="cpu", precision="int3")
