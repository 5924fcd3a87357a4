"""Preprocessing presets named by the weights manifest.

ImageNet classification reuses torchvision's own preset; the CycleGAN preset is the book's
`Resize(256)` + `ToTensor()`.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import transforms as T
from torchvision.transforms._presets import ImageClassification


def cyclegan(size: int = 256) -> T.Compose:
    """The book's CycleGAN input pipeline: shortest side to `size`, then a tensor in [0, 1]."""
    return T.Compose([T.Resize(size), T.ToTensor()])


def cyclegan_output(y: torch.Tensor) -> torch.Tensor:
    """Map generator output in [-1, 1] back to [0, 1]."""
    return ((y + 1) / 2).clamp(0, 1)


_PRESETS = {
    "image_classification": ImageClassification,
    "cyclegan": cyclegan,
}


def build(spec: dict[str, Any] | None) -> Any:
    """Instantiate the preset described by a manifest `transforms` entry (None when there is none)."""
    if not spec:
        return None
    spec = dict(spec)
    name = spec.pop("preset")
    if "interpolation" in spec:  # stored by value in JSON
        spec["interpolation"] = T.InterpolationMode(spec["interpolation"])
    return _PRESETS[name](**spec)


def image_classification_train(eval_preset: ImageClassification) -> T.Compose:
    """Training-time augmentation matching an evaluation preset: random resized crop and flip, then the same
    normalisation (torchvision's classification recipe)."""
    return T.Compose(
        [
            T.RandomResizedCrop(eval_preset.crop_size[0], interpolation=eval_preset.interpolation),
            T.RandomHorizontalFlip(),
            T.PILToTensor(),
            T.ConvertImageDtype(torch.float),
            T.Normalize(eval_preset.mean, eval_preset.std),
        ]
    )
