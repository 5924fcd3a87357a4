"""Where zoo keeps its files: the zoo home and torch's hub cache.

Nothing here imports torch: `zoo cache dir` and `zoo cache ls` start without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs


def home() -> Path:
    """The zoo home: `ZOO_HOME`, else platformdirs' user cache dir for "zoo"."""
    return Path(os.environ.get("ZOO_HOME") or platformdirs.user_cache_dir("zoo"))


def weights_dir() -> Path:
    """Downloaded weight files, one file per manifest `file_name`."""
    return home() / "weights"


def torch_hub_dir() -> Path:
    """torch.hub's folder: what `torch.hub.get_dir()` returns.

    When torch is already imported it is asked (a `torch.hub.set_dir()` call counts); otherwise its rule is
    applied to the environment, `$TORCH_HOME/hub` with TORCH_HOME defaulting to `$XDG_CACHE_HOME/torch`,
    since importing torch only to read two variables costs about 1.4 s.
    """
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        return Path(hub.get_dir())
    xdg = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.path.expanduser(os.environ.get("TORCH_HOME", os.path.join(xdg, "torch")))
    return Path(torch_home) / "hub"


def torch_checkpoints_dir() -> Path:
    """torch.hub's weight cache (`$TORCH_HOME/hub/checkpoints`), reused when it already holds a file."""
    return torch_hub_dir() / "checkpoints"
