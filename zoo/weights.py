"""Resolve a manifest entry to a local weight file."""

from __future__ import annotations

from pathlib import Path

from . import cache
from .errors import WeightsNotFoundError
from .manifest import Weights


def candidates(w: Weights) -> list[Path]:
    """Every local place the file of `w` may already be, in the order they are tried."""
    dirs = [cache.weights_dir(), *cache.bundled_dirs(), cache.torch_checkpoints_dir()]
    return [d / w.file_name for d in dirs]


def find_local(w: Weights) -> Path | None:
    """The first local copy of `w`'s file, or None."""
    return next((p for p in candidates(w) if p.is_file()), None)


def resolve(w: Weights, *, progress: bool | None = None) -> Path:
    """Return a local path to the file of `w`."""
    found = find_local(w)
    if found is not None:
        return found
    tried = "\n  ".join(str(p) for p in candidates(w))
    raise WeightsNotFoundError(
        f"weights {w.key} ({w.file_name}) are not available locally; looked in:\n  {tried}\n"
        f"download {w.urls[0] if w.urls else w.file_name} into {cache.weights_dir()}"
    )
