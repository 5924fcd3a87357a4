"""zoo: a pretrained-model zoo and hub registry for PyTorch.

The public API is listed in `__all__`. Each name loads its part of zoo on first use (a module-level
`__getattr__`), so `import zoo` and the `zoo` command start without torch: `zoo --help` takes a tenth of
`import torch`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__
from .errors import ZooError
from .publish import publish  # eager: see zoo/publish.py

# public name -> the module that defines it
_EXPORTS = {
    "Weights": "zoo.weights.manifest",
    "caption": "zoo.tasks.captioning",
    "check_repo": "zoo.hub.check",
    "classify": "zoo.tasks.classification",
    "download": "zoo.store.download",
    "generate": "zoo.tasks.generation",
    "get_model": "zoo.registry",
    "get_weights": "zoo.registry",
    "help": "zoo.hub.api",
    "list": "zoo.hub.api",
    "list_models": "zoo.registry",
    "list_weights": "zoo.registry",
    "load": "zoo.hub.api",
    "translate": "zoo.tasks.translation",
}
_SUBPACKAGES = {
    "cli",
    "devices",
    "distributed",
    "errors",
    "hub",
    "models",
    "publish",
    "registry",
    "store",
    "tasks",
    "weights",
}

__all__ = [
    "Weights",
    "ZooError",
    "caption",
    "check_repo",
    "classify",
    "download",
    "generate",
    "get_model",
    "get_weights",
    "help",
    "list",
    "list_models",
    "list_weights",
    "load",
    "publish",
    "translate",
]

if TYPE_CHECKING:  # for type checkers and IDEs: the names as they are once loaded
    from .hub.api import help, list, load
    from .hub.check import check_repo
    from .registry import get_model, get_weights, list_models, list_weights
    from .store.download import download
    from .tasks.captioning import caption
    from .tasks.classification import classify
    from .tasks.generation import generate
    from .tasks.translation import translate
    from .weights.manifest import Weights


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBPACKAGES})
