"""zoo.translate: the book's CycleGAN pipeline and its output sizes."""

from __future__ import annotations

import torch
from conftest import photo
from torchvision.transforms.functional import pil_to_tensor

import zoo
from zoo.tasks import Translator


def test_a_1500x1220_photo_gives_316x256(tmp_path):
    photo(1500, 1220).save(tmp_path / "horse.jpg")
    out = zoo.translate(tmp_path / "horse.jpg", weights=None, device="cpu")
    assert out.size == (316, 256) and out.mode == "RGB"


def test_size_and_pil_input(tmp_path):
    torch.manual_seed(0)
    translator = Translator(weights=None, device="cpu", size=128)
    out = translator(photo(400, 300))
    assert min(out.size) == 128 and out.size == (172, 128)


def test_output_is_the_generator_output_mapped_to_0_1(tmp_path):
    translator = Translator(weights=None, device="cpu", size=64)
    image = photo(64, 64)
    out = translator(image)
    x = translator.transform(image).unsqueeze(0)
    with torch.inference_mode():
        expected = ((translator.model(x)[0] + 1) / 2).clamp(0, 1)
    got = pil_to_tensor(out).float() / 255
    assert (got - expected).abs().max() <= 1 / 255 + 1e-6
