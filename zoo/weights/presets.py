"""Preprocessing presets named by the weights manifest or a weight file's card.

ImageNet classification reuses torchvision's own preset; the CycleGAN preset is the book's
`Resize(256)` + `ToTensor()`; the NeuralTalk2 preset is the book's captioner input: the full image (no resize,
no crop), `/255`, ImageNet's mean and std. A spec comes from a manifest or from the card of a file someone sent, so
`build` checks every field (name, type, range) and refuses anything else with one ManifestError.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torchvision import transforms as T
from torchvision.transforms._presets import ImageClassification

from ..errors import ManifestError

# A side beyond any model's input (torchvision's largest preset crops 518); 4096 is also where the tasks'
# 16-megapixel decoding limit stops an image anyway. A typo like 22400 would otherwise allocate gigabytes.
MAX_SIDE = 4096


def cyclegan(size: int = 256) -> T.Compose:
    """The book's CycleGAN input pipeline: shortest side to `size`, then a tensor in [0, 1]."""
    return T.Compose([T.Resize(size), T.ToTensor()])


NEURALTALK2_MEAN = (0.485, 0.456, 0.406)
NEURALTALK2_STD = (0.229, 0.224, 0.225)


def neuraltalk2(size: int | None = None) -> T.Compose:
    """The captioner's input: the image at full resolution (the book's), or resized to `size` x `size` (the
    zoo's 64x64 scene captioner), as a tensor in [0, 1] normalised with ImageNet's mean and std."""
    resize = [T.Resize((size, size))] if size is not None else []
    return T.Compose([*resize, T.ToTensor(), T.Normalize(NEURALTALK2_MEAN, NEURALTALK2_STD)])


def cyclegan_output(y: torch.Tensor) -> torch.Tensor:
    """Map generator output in [-1, 1] back to [0, 1]."""
    return ((y + 1) / 2).clamp(0, 1)


def _side(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SIDE


def _channels(positive: bool) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return (
            isinstance(value, (list, tuple))
            and len(value) == 3  # RGB: the tasks convert every image to three channels
            and all(
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and math.isfinite(v)
                and (v > 0 or not positive)
                for v in value
            )
        )

    return check


_INTERPOLATIONS = {m.value for m in T.InterpolationMode}

# Each preset: its builder, the fields it requires, and a check per accepted field.
_PRESETS: dict[str, tuple[Callable[..., Any], set[str], dict[str, Callable[[Any], bool]]]] = {
    "image_classification": (
        ImageClassification,
        {"crop_size"},
        {
            "crop_size": _side,
            "resize_size": _side,
            "mean": _channels(positive=False),
            "std": _channels(positive=True),  # a std of 0 divides by zero: every pixel inf or nan
            "interpolation": lambda v: isinstance(v, str) and v in _INTERPOLATIONS,
            "antialias": lambda v: isinstance(v, bool),
        },
    ),
    "cyclegan": (cyclegan, set(), {"size": _side}),
    "neuraltalk2": (neuraltalk2, set(), {"size": _side}),
}

_WHAT = {
    "crop_size": f"a whole number from 1 to {MAX_SIDE}",
    "resize_size": f"a whole number from 1 to {MAX_SIDE}",
    "size": f"a whole number from 1 to {MAX_SIDE}",
    "mean": "a list of 3 finite numbers",
    "std": "a list of 3 finite numbers above 0",
    "interpolation": f"one of {', '.join(sorted(_INTERPOLATIONS))}",
    "antialias": "true or false",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(spec: Any, what: str = "transforms") -> None:
    """Raise ManifestError unless `spec` is None/{} or a preset `build` can make (known name, known fields of
    the right type and range). `what` names where the spec came from, for the message."""
    if not spec:
        return
    if not isinstance(spec, dict) or not isinstance(spec.get("preset"), str):
        raise ManifestError(f"{what}: a preset must be an object with a 'preset' name, not {_short(spec)}")
    name = spec["preset"]
    if name not in _PRESETS:
        raise ManifestError(f"{what}: unknown preset {_short(name)}; zoo knows {', '.join(sorted(_PRESETS))}")
    _, required, fields = _PRESETS[name]
    for field, value in spec.items():
        if field == "preset":
            continue
        if field not in fields:
            raise ManifestError(
                f"{what}: the preset {name} has no field {_short(field)} "
                f"(it takes {', '.join(sorted(fields))})"
            )
        if not fields[field](value):
            raise ManifestError(f"{what}: {name}'s {field} must be {_WHAT[field]}, not {_short(value)}")
    missing = sorted(required - spec.keys())
    if missing:
        raise ManifestError(f"{what}: the preset {name} needs {', '.join(missing)}")


def build(spec: dict[str, Any] | None, what: str = "transforms") -> Any:
    """Instantiate the preset described by a manifest or card `transforms` entry (None when there is none).

    Any spec that is not a known preset with valid fields is one ManifestError naming `what`, never a
    KeyError or TypeError from deep inside torchvision.
    """
    check(spec, what)
    if not spec:
        return None
    spec = dict(spec)
    make, _, _ = _PRESETS[spec.pop("preset")]
    if "interpolation" in spec:  # stored by value in JSON
        spec["interpolation"] = T.InterpolationMode(spec["interpolation"])
    for field in ("mean", "std"):
        if field in spec:
            spec[field] = tuple(float(v) for v in spec[field])
    return make(**spec)


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
