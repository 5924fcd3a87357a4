"""Where zoo keeps its files: the cache home and the places weight files may already be."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import torch.hub

from .manifest import REPO_ROOT


def home() -> Path:
    """The zoo home: `ZOO_HOME`, else platformdirs' user cache dir for "zoo"."""
    return Path(os.environ.get("ZOO_HOME") or platformdirs.user_cache_dir("zoo"))


def weights_dir() -> Path:
    """Downloaded weight files, one file per manifest `file_name`."""
    return home() / "weights"


def torch_checkpoints_dir() -> Path:
    """torch.hub's weight cache (`$TORCH_HOME/hub/checkpoints`), reused when it already holds a file."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def bundled_dirs() -> list[Path]:
    """Folders whose weight files ship with the repository or package."""
    return [REPO_ROOT / "weights"]
