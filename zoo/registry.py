"""List and build the zoo's models by name, and look up their weights."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import torch.nn as nn

from . import manifest
from .errors import UnknownNameError, unknown
from .manifest import Weights
from .transfer import offline_mode

F = TypeVar("F", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


def register_model(*aliases: str) -> Callable[[F], F]:
    """Register a builder under its function name (and any aliases)."""

    def wrap(fn: F) -> F:
        _MODELS[fn.__name__] = fn
        for alias in aliases:
            _ALIASES[alias] = fn.__name__
        return fn

    return wrap


def _ensure_models() -> None:
    from . import models  # noqa: F401  (importing the families registers them)


def canonical_name(name: str) -> str:
    """The registered name for `name` or one of its aliases; raises with suggestions if unknown."""
    _ensure_models()
    if name in _MODELS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    raise unknown("model", name, [*_MODELS, *_ALIASES])


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted, optionally filtered by an fnmatch pattern like `resnet*`."""
    _ensure_models()
    names = sorted(_MODELS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def aliases_of(name: str) -> list[str]:
    """The other names a model can be built by."""
    return sorted(a for a, n in _ALIASES.items() if n == name)


def get_builder(name: str) -> Callable[..., nn.Module]:
    """The builder function registered for `name`."""
    return _MODELS[canonical_name(name)]


def get_model(
    name: str,
    *,
    weights: Any = "DEFAULT",
    device: Any = None,
    num_classes: int | None = None,
    offline: bool | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build model `name` with `weights` ("DEFAULT", a key or tag, a local file, or None for random init).

    `offline=True` (or `ZOO_OFFLINE=1`) never touches the network: the weights must be in a cache, bundled,
    or in a folder mirror.
    """
    builder = get_builder(name)
    pretrained = kwargs.pop("pretrained", None)
    # torch.hub's spelling decides when `weights` was left at its default.
    if pretrained is not None and weights == "DEFAULT":
        weights = "DEFAULT" if pretrained else None
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    with offline_mode(offline):
        return builder(weights=weights, device=device, **kwargs)


def list_weights(model: str | None = None) -> list[str]:
    """Keys of the known weights, sorted; only those of `model` when given."""
    known = manifest.load().weights
    if model is None:
        return sorted(known)
    arch = canonical_name(model)
    return sorted(k for k, w in known.items() if w.arch == arch)


def get_weights(key: str) -> Weights:
    """The weights for `key`: a full key like `resnet101.imagenet1k_v1`, or a model name for its default."""
    m = manifest.load()
    if key in m.weights:
        return m.weights[key]
    arch, _, tag = key.partition(".")
    try:
        arch = canonical_name(arch)
    except UnknownNameError:
        raise unknown("weights", key, m.weights) from None
    return resolve_weights(arch, tag or "DEFAULT")


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith(WEIGHT_SUFFIXES) or Path(value).is_file()


def resolve_weights(arch: str, weights: Any) -> Weights | Path | None:
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
        if arch not in m.defaults:
            raise UnknownNameError(f"no pretrained weights are known for {arch!r}; use weights=None")
        return m.weights[m.defaults[arch]]
    key = next((k for k in (weights, weights.lower(), f"{arch}.{weights.lower()}") if k in m.weights), None)
    if key is not None:
        w = m.weights[key]
        if w.arch != arch:
            raise UnknownNameError(f"weights {key!r} are for {w.arch!r}, not {arch!r}")
        return w
    if _looks_like_path(weights):
        return _existing_file(Path(weights))
    raise unknown(f"weights for {arch}", weights, [w.key for w in m.for_arch(arch)])


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise UnknownNameError(f"weight file not found: {path}")
    return path
