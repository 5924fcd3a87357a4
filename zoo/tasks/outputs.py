"""Writing the tasks' outputs: checked before any work, atomic, and never over a file the user did not offer.

Every output is written to a private temporary file beside its target and then moved into place, so a crash
or Ctrl-C never leaves half an image or half a checkpoint. Without `overwrite`, the move is a hard link,
which fails if the target appeared meanwhile (no check-then-write race); with it, a rename that replaces
the target (a symbolic link there is replaced, never written through).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import InvalidArgumentError, StorageError
from .images import show_path


def _read_umask() -> int:
    # Read once, at import (single-threaded): os.umask can only be read by setting it.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
TMP_PREFIX = ".zoo-"  # temporary files beside an output: .zoo-XXXXXXXX.tmp


def check_output_dir(folder: str | os.PathLike, what: str = "output folder") -> None:
    """Refuse, before any work, a folder that could not be created or written: one under a file, a file
    itself, or inside a folder without write permission. Nothing is created."""
    folder = Path(folder)
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == folder else f"is under {show_path(existing)}, which is"
        raise InvalidArgumentError(f"{what} {show_path(folder)} {where} a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StorageError(f"{what} {show_path(folder)}: {show_path(existing)} is not writable")


def make_output_dir(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create `folder` (and its parents) after check_output_dir; errors are one InvalidArgumentError."""
    folder = Path(folder)
    check_output_dir(folder, what)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create the {what} {show_path(folder)}: {e.strerror or e}") from None
    return folder


def file_ids(paths: Iterable[str | os.PathLike]) -> set[tuple[int, int]]:
    """(device, inode) of each existing path: how outputs recognise an input under any other name."""
    ids = set()
    for p in paths:
        with contextlib.suppress(OSError):
            st = os.stat(p)
            ids.add((st.st_dev, st.st_ino))
    return ids


def is_one_of(path: str | os.PathLike, ids: set[tuple[int, int]]) -> bool:
    """Whether `path` exists and is one of the files (or folders) `ids` names (see file_ids)."""
    return bool(file_ids([path]) & ids)


def refuse_existing(path: str | os.PathLike, overwrite: bool, what: str = "output") -> None:
    """Refuse an output `path` that exists, unless `overwrite` (a folder is refused either way)."""
    path = Path(path)
    if path.is_dir():
        raise InvalidArgumentError(f"{what} {show_path(path)} is a folder; give a file name")
    if os.path.lexists(path) and not overwrite:
        raise InvalidArgumentError(
            f"{what} {show_path(path)} already exists; pass --overwrite (overwrite=True) to replace it"
        )


def write_atomic(path: str | os.PathLike, write: Callable[[str], None], *, overwrite: bool = False) -> None:
    """Call `write(tmp)` to fill a temporary file beside `path`, then move it into place.

    Without `overwrite`, an existing `path` is left alone and InvalidArgumentError raised. The temporary
    file is removed whatever happens; an OSError (a full disk, a read-only folder) is StorageError.
    """
    path = Path(path)
    name = show_path(path)
    try:
        # A short private name (17 bytes), not one built from the target's: an output named near the 255-byte
        # limit of a file name must still be writable.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=".tmp")
    except OSError as e:
        raise StorageError(f"cannot write {name}: {e.strerror or e}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; outputs are the user's ordinary files
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except FileExistsError:
        raise InvalidArgumentError(
            f"{name} already exists; pass --overwrite (overwrite=True) to replace it"
        ) from None
    except OSError as e:
        raise StorageError(f"cannot write {name}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _link_new(tmp: str, path: Path) -> None:
    # A hard link never replaces an existing name. File systems without hard links (FAT, some network
    # mounts) get a check and a rename instead: the one gap is a file created in between.
    try:
        os.link(tmp, path)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
        os.replace(tmp, path)


def image_format(path: str | os.PathLike) -> str:
    """Pillow's format name for an output file name's suffix (InvalidArgumentError for an unknown one)."""
    from PIL import Image

    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise InvalidArgumentError(
            f"{show_path(path)}: Pillow cannot write {suffix or 'files without a suffix'}"
        )
    return fmt
