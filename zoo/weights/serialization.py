"""Load weight files without running code from them."""

from __future__ import annotations

import os
import pickle
import threading
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as _load_safetensors

from ..errors import UnsafeCheckpointError, ZooError

StateDict = dict[str, torch.Tensor]


class GanZooConfig:
    """Plain-data stand-in for the GAN zoo's pickled `BaseConfig`: its attributes, never its code.

    The GAN zoo saves `{"config": BaseConfig, "netG": ..., "netD": ..., "avgG": ...}`; torch's weights-only
    unpickler builds this class instead of importing `models.utils.config`, and only hands it the pickled
    attributes, which are kept apart from the class's own names (`config.dimLatentVector` reads them).
    """

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("the GAN zoo config's state is not a dict")
        self.__dict__["_attrs"] = dict(state)

    def __getattr__(self, name: str) -> object:
        try:
            return self.__dict__["_attrs"][name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self, _seen: frozenset[int] = frozenset()) -> dict[str, object]:
        """The config's attributes, nested configs included, as plain dicts (a cycle becomes None)."""
        seen = _seen | {id(self)}
        return {
            k: (None if id(v) in seen else v.as_dict(seen)) if isinstance(v, GanZooConfig) else v
            for k, v in self.__dict__.get("_attrs", {}).items()
        }


# Classes that legacy checkpoints pickle, mapped to plain stand-ins (checkpoint path -> stand-in).
LEGACY_CLASSES: list[tuple[type, str]] = [(GanZooConfig, "models.utils.config.BaseConfig")]


# torch keeps the allow-list process-wide: one load at a time sets and clears it, so that another
# thread's load cannot lose the entries halfway through.
_legacy_lock = threading.Lock()


def _torch_load(path: Path, mmap: bool) -> object:
    with _legacy_lock, torch.serialization.safe_globals(LEGACY_CLASSES):
        return _torch_load_file(path, mmap)


def _torch_load_file(path: Path, mmap: bool) -> object:
    if mmap:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            # Files written before torch 1.6 (the book's CycleGAN) are not zip archives and cannot be mapped.
            if "mmap" not in str(e) and "zip" not in str(e):
                raise
    return torch.load(path, map_location="cpu", weights_only=True)


# torch.save writes every zip member stored, uncompressed; torch.load still inflates deflated members into
# memory, so a 195 KB file of deflated zeros became a 200 MB tensor here (a 1000-fold expansion). A member
# may inflate this many times its packed size, past the floor below, before the file is refused as a bomb.
MAX_INFLATION = 20
INFLATION_FLOOR = 64 << 20  # bytes: small compressed members (re-zipped tiny models) are always fine


def read_checkpoint(path: str | os.PathLike, *, mmap: bool = False) -> object:
    """The whole object saved in a weight file, read without running code from it.

    Tensors, plain containers and numbers only, plus the legacy classes of `LEGACY_CLASSES`, which become
    plain stand-ins (the GAN zoo's config). Anything else is refused with UnsafeCheckpointError, and so is a
    file whose safetensors header or zip directory is malformed or hostile (a zip bomb).
    """
    path = Path(path)
    _reject_non_weights(path)
    if path.suffix.lower() == ".safetensors":
        try:
            return _load_safetensors(str(path))
        except SafetensorError as e:
            # Header lengths, offsets, shapes and dtypes are all checked by safetensors before any tensor is
            # made; what it refuses is not a weight file zoo will read.
            raise UnsafeCheckpointError(
                f"{path} is not a readable weight file (not valid safetensors): {_first_line(e)}"
            ) from None
        except (OSError, RuntimeError, ValueError, TypeError, MemoryError) as e:
            raise UnsafeCheckpointError(
                f"{path} is not a readable safetensors file (truncated or corrupt?): {_first_line(e)}"
            ) from None
    _reject_zip_bomb(path)
    try:
        return _torch_load(path, mmap)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # torch names the class it refused; anything else is junk
            raise ZooError(f"{path} is not a weight file: {_first_line(e)}") from e
        raise UnsafeCheckpointError(
            f"refusing to load {path}: its pickle holds objects other than tensors and plain containers, "
            "and loading them could run code; save `model.state_dict()` (or use .safetensors) instead"
        ) from e
    except MemoryError:
        raise UnsafeCheckpointError(f"{path} asks for more memory than there is: not loaded") from None
    except (
        OSError,
        EOFError,
        RuntimeError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
    ) as e:
        # Junk that torch's reader trips over in its own way (a truncated zip, a pickle of the wrong shape).
        raise ZooError(
            f"{path} is not a readable weight file (truncated or corrupt?): {_first_line(e)}"
        ) from e


def load_state_dict(path: str | os.PathLike, *, mmap: bool = False) -> StateDict:
    """Read a state dict from `.safetensors` or a torch pickle, refusing anything but plain data.

    Wrapped checkpoints (`{"state_dict": ...}`, the GAN zoo's `{"config", "netG", ...}`) give the model's
    part. `mmap=True` maps a torch file instead of reading it: the tensors then stay backed by the file,
    so use it only for files that are never rewritten in place (the zoo's caches replace files by renaming).
    """
    return _unwrap(read_checkpoint(path, mmap=mmap), Path(path))


def _reject_non_weights(path: Path) -> None:
    # What a failed download or a repo checkout often leaves in place of the file.
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
    except OSError as e:
        raise ZooError(f"cannot read weight file {path}: {e.strerror}") from e
    if head.startswith(b"version https://git-lfs"):
        raise ZooError(
            f"{path} is a Git LFS pointer, not the weight file itself (run `git lfs pull` where it came from)"
        )
    if head[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise ZooError(
            f"{path} is an HTML page, not a weight file (a login or error page saved by a download?)"
        )


def _reject_zip_bomb(path: Path) -> None:
    # Reads the zip's central directory only (a few KB), never the members.
    if not zipfile.is_zipfile(path):
        return  # a legacy (pre-1.6) torch file, or junk that torch.load reports itself
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ZooError(
            f"{path} is not a readable weight file (a broken zip archive): {_first_line(e)}"
        ) from None
    for m in members:
        if m.compress_type != zipfile.ZIP_STORED and m.file_size > max(
            INFLATION_FLOOR, MAX_INFLATION * m.compress_size
        ):
            raise UnsafeCheckpointError(
                f"refusing to load {path}: its member {m.filename!r} would inflate from {m.compress_size} to "
                f"{m.file_size} bytes (a zip bomb?); torch.save never compresses, so re-save it with torch.save"
            )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _is_state_dict(obj: object) -> bool:
    # Names must be strings (a pickle may use any key) and tensors plain dense ones: a sparse, quantized or
    # nested tensor fits no parameter, and would fail deep inside torch instead of here.
    return isinstance(obj, dict) and all(
        isinstance(k, str)
        and isinstance(v, torch.Tensor)
        and v.layout == torch.strided
        and not v.is_quantized
        for k, v in obj.items()
    )


def _unwrap(obj: object, path: Path) -> StateDict:
    if _is_state_dict(obj):
        return obj
    if isinstance(obj, dict):
        # Training scripts' wrappers, and the GAN zoo's generator ("netG"; "avgG" is its running average).
        for key in ("state_dict", "model_state_dict", "model", "netG"):
            inner = obj.get(key)
            if _is_state_dict(inner):
                return inner
    raise ZooError(f"{path} does not hold a state dict (a mapping of names to plain dense tensors)")
