"""A builder's `weights` argument to what it names: manifest `Weights`, a local file, or nothing."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import UnknownNameError, unknown
from . import manifest
from .manifest import Weights

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith(WEIGHT_SUFFIXES) or Path(value).is_file()


def select_weights(arch: str, weights: Any) -> Weights | Path | None:
    """Turn a builder's `weights` argument into manifest `Weights`, a local file `Path`, or None.

    Accepted: None; "DEFAULT"; a key (`resnet50.imagenet1k_v2`) or tag (`imagenet1k_v2`, any case);
    a torchvision weights enum; a `Weights`; a path to a local weight file.
    """
    if weights is None:
        return None
    if isinstance(weights, Weights):
        if weights.arch != arch:
            raise UnknownNameError(f"weights {weights.key!r} are for {weights.arch!r}, not {arch!r}")
        return weights
    if isinstance(weights, os.PathLike):
        return _existing_file(Path(weights))
    if isinstance(weights, Enum):  # torchvision's ResNet50_Weights.IMAGENET1K_V2 and friends
        expected = f"{arch.lower()}_weights"
        if type(weights).__name__.lower() != expected:
            raise UnknownNameError(f"{type(weights).__name__}.{weights.name} are not weights for {arch!r}")
        weights = weights.name
    if not isinstance(weights, str):
        raise TypeError(f"weights must be None, a key, a path or Weights, not {type(weights).__name__}")
    m = manifest.load()
    if weights.upper() == "DEFAULT":
        default = m.default_for(arch)
        if default is None:
            raise UnknownNameError(f"no pretrained weights are known for {arch!r}; use weights=None")
        return default
    key = next((k for k in (weights, weights.lower(), f"{arch}.{weights.lower()}") if k in m.weights), None)
    if key is not None:
        w = m.weights[key]
        if w.arch != arch:
            raise UnknownNameError(f"weights {key!r} are for {w.arch!r}, not {arch!r}")
        return w
    if _looks_like_path(weights):
        return _existing_file(Path(weights))
    raise unknown(f"weights for {arch}", weights, [w.key for w in m.for_arch(arch)])


def local_file(weights: Any) -> Path | None:
    """The existing local weight file that `weights` names, or None (None, "DEFAULT", keys, tags, `Weights`).

    Needs no architecture, so a caller can read a file's card before choosing the model to build.
    """
    if isinstance(weights, os.PathLike):
        path = Path(weights)
    elif isinstance(weights, str) and weights.upper() != "DEFAULT" and _looks_like_path(weights):
        known = manifest.load().weights
        if weights in known or weights.lower() in known:
            return None
        path = Path(weights)
    else:
        return None
    return path if path.is_file() else None


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise UnknownNameError(f"weight file not found: {path}")
    return path
