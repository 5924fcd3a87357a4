"""Tasks raise the same error types for the same mistakes: ZooError subclasses that are also ValueError."""

from __future__ import annotations

import pytest
from conftest import photo

import zoo
from zoo.errors import InvalidArgumentError, ZooError
from zoo.tasks import Classifier, Translator, finetune


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "x.jpg"
    photo(64, 48).save(path)
    return path


@pytest.mark.parametrize(
    "call",
    [
        lambda p, d: zoo.classify([p], model="resnet18", weights=None, topk=0, device="cpu"),
        lambda p, d: zoo.classify([p], model="resnet18", weights=None, batch_size=0, device="cpu"),
        lambda p, d: zoo.classify([p], model="resnet18", weights=None, precision="fp8", device="cpu"),
        lambda p, d: zoo.classify([p], model="resnet18", weights=None, device="tpu:0"),
        lambda p, d: zoo.generate(0, weights=None, device="cpu"),
        lambda p, d: Translator("cyclegan", None, device="cpu", size=4),
        lambda p, d: Classifier("cyclegan", None, device="cpu"),
        lambda p, d: finetune(d / "missing", d / "out", weights=None, device="cpu"),
        lambda p, d: finetune(d, d / "out", weights=None, epochs=0, device="cpu"),
    ],
    ids=[
        "topk",
        "batch_size",
        "precision",
        "device",
        "generate_n",
        "translate_size",
        "not_a_classifier",
        "missing_data",
        "epochs",
    ],
)
def test_bad_arguments_raise_one_zoo_error_that_is_a_value_error(call, image, tmp_path):
    with pytest.raises(InvalidArgumentError) as e:
        call(image, tmp_path)
    assert isinstance(e.value, ZooError) and isinstance(e.value, ValueError)
