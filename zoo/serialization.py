"""Load weight files without running code from them."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as _load_safetensors

from .errors import ZooError

StateDict = dict[str, torch.Tensor]


class UnsafeCheckpointError(ZooError):
    """A checkpoint whose pickle asks for objects outside the allow-list."""


def _torch_load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        # Files written before torch 1.6 (the book's CycleGAN) are not zip archives and cannot be mapped.
        if "mmap" not in str(e) and "zip" not in str(e):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def load_state_dict(path: str | os.PathLike) -> StateDict:
    """Read a state dict from `.safetensors` or a torch pickle, refusing anything but plain data."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            return _load_safetensors(str(path))
        obj = _torch_load(path)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: its pickle holds objects other than tensors and plain containers, "
            "and loading them could run code; save `model.state_dict()` (or use .safetensors) instead"
        ) from e
    except (OSError, EOFError, RuntimeError, ValueError, SafetensorError) as e:
        raise ZooError(
            f"{path} is not a readable weight file (truncated or corrupt?): {_first_line(e)}"
        ) from e
    return _unwrap(obj, path)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _unwrap(obj: object, path: Path) -> StateDict:
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, dict) and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    raise ZooError(f"{path} does not hold a state dict (a mapping of names to tensors)")
