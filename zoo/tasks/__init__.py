"""The book's workflows on the zoo's models: classify, translate, generate, caption, fine-tune.

The task modules load on first use (they import torchvision), so `zoo --help` and the submodules that
need neither (`zoo.tasks.images`) start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Captioner": "captioning",
    "caption": "captioning",
    "Classifier": "classification",
    "classify": "classification",
    "finetune": "finetuning",
    "generate": "generation",
    "save_grid": "generation",
    "Translator": "translation",
    "translate": "translation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
