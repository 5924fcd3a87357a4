"""List and build the zoo's models by name, and look up their weights."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import DuplicateNameError, UnknownNameError, unknown
from .store.download import offline_mode
from .weights import manifest
from .weights.manifest import Weights
from .weights.selection import select_weights

if TYPE_CHECKING:
    import torch.nn as nn

F = TypeVar("F", bound=Callable[..., "nn.Module"])

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}


def register_model(*aliases: str) -> Callable[[F], F]:
    """Register a builder under its function name (and any aliases); a name already taken is refused."""

    def wrap(fn: F) -> F:
        names = [fn.__name__, *aliases]
        for name in names:
            if name in _MODELS or name in _ALIASES or names.count(name) > 1:
                raise DuplicateNameError(f"a model is already registered under the name {name!r}")
        _MODELS[fn.__name__] = fn
        for alias in aliases:
            _ALIASES[alias] = fn.__name__
        return fn

    return wrap


def is_registered(name: str) -> bool:
    """Whether `name` is taken already (a builder or an alias), without importing the families."""
    return name in _MODELS or name in _ALIASES


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


def list_models(
    pattern: str | Sequence[str] | None = None,
    *,
    pretrained: bool = False,
    exclude_filters: str | Sequence[str] | None = None,
    filter: str | Sequence[str] | None = None,  # noqa: A002  (timm's name for `pattern`)
) -> list[str]:
    """Names of the registered models, sorted, optionally filtered by fnmatch patterns like `resnet*`.

    Takes timm's arguments too, so code written for `timm.list_models` works: `filter` (the same as
    `pattern`; a pattern or a list of them, any may match), `pretrained=True` (only models with known
    weights) and `exclude_filters` (patterns whose matches are left out).
    """
    _ensure_models()
    wanted = _patterns(pattern) + _patterns(filter)
    excluded = _patterns(exclude_filters)
    names = sorted(_MODELS)
    if wanted:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in wanted)]
    if excluded:
        names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in excluded)]
    if pretrained:
        known = {w.arch for w in manifest.load().weights.values()}
        names = [n for n in names if n in known]
    return names


def _patterns(value: str | Sequence[str] | None) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [p for p in value if p]


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

    `pretrained=True` (torch.hub's spelling) means what it means in torchvision: the legacy V1 ImageNet
    weights for torchvision's classifiers, the default weights for the others. Models are built on the CPU
    unless `device=` is given.

    `offline=True` (or `ZOO_OFFLINE=1`) never touches the network: the weights must be in a cache, bundled,
    or in a folder mirror.
    """
    builder = get_builder(name)
    # torch.hub's spelling decides when `weights` was left at its default: the builder then maps
    # pretrained=True to torchvision's legacy weights, as torchvision does.
    if kwargs.get("pretrained") is not None and weights == "DEFAULT":
        weights = None
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
    return select_weights(arch, tag or "DEFAULT")
