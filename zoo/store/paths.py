"""Where zoo keeps its files: the zoo home and torch's hub cache.

Nothing here imports torch: `zoo cache dir` and `zoo cache ls` start without it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path

from ..errors import StorageError


def home() -> Path:
    """The zoo home: `ZOO_HOME` (with `~` expanded, as torch does for TORCH_HOME), else platformdirs' user
    cache dir for "zoo"."""
    configured = os.environ.get("ZOO_HOME")
    if configured:
        return Path(os.path.expanduser(configured))
    # Imported only here: with ZOO_HOME set zoo runs without platformdirs, as bench/gpu.py does on the GPU
    # machines lent to this project, whose Python has torch but not platformdirs.
    import platformdirs

    return Path(platformdirs.user_cache_dir("zoo"))


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


def cannot_write(path: str | os.PathLike, error: OSError, *, doing: str = "write") -> StorageError:
    """One StorageError for an OSError met writing `path`: which path, why, and what to do about it."""
    path = Path(path)
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space"
    elif error.errno == errno.ELOOP:
        hint = "a symbolic link is planted there; zoo never writes through one: remove it"
    else:
        hint = "make it writable"
    try:
        inside_home = path.absolute().is_relative_to(home().absolute())
    except (OSError, ValueError):
        inside_home = False
    if inside_home:
        hint += ", or set ZOO_HOME to a writable folder"
    return StorageError(f"cannot {doing} {path}: {reason} ({hint})")


def make_dirs(folder: str | os.PathLike) -> Path:
    """Create `folder` and its parents if needed; a folder that cannot be created is one StorageError.

    Below the zoo home, folders are made one level at a time and a symbolic link on the way is refused:
    `mkdir(parents=True)`, and every write after it, would follow a link planted in the cache (`weights/`,
    `hub/`, `locks/`) and write wherever it points. The zoo home itself may be a link (a cache moved to
    another disk), and so may folders outside it, which the user named.
    """
    folder = Path(folder)
    base = home()
    try:
        below = folder.absolute().relative_to(base.absolute())
    except ValueError:
        below = None
    try:
        if below is None:
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        if base.exists() and not base.is_dir():
            raise StorageError(f"the zoo home {base} is not a folder (set ZOO_HOME to a folder)")
        base.mkdir(parents=True, exist_ok=True)
        path = base
        for part in below.parts:
            path = path / part
            if path.is_symlink():
                raise StorageError(
                    f"{path} is a symbolic link; zoo never writes through a link planted in its home "
                    "(remove it, or set ZOO_HOME to the folder it points to)"
                )
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            if not path.is_dir():
                raise StorageError(f"{path} is in the way: zoo needs a folder there (remove it)")
    except (FileExistsError, NotADirectoryError):  # a file where a folder of the path must be
        hint = ", or set ZOO_HOME to a writable folder" if below is not None else ""
        raise StorageError(
            f"cannot create the folder {folder}: a file is in the way (remove it{hint})"
        ) from None
    except OSError as e:
        raise cannot_write(folder, e, doing="create the folder") from None
    return folder
