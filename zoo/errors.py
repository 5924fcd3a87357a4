"""Errors a user can cause and fix. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """Base class of every expected error raised by zoo."""


class InvalidArgumentError(ZooError, ValueError):
    """An argument outside what a function accepts (a batch size of 0, an unknown precision or device)."""


class UnknownNameError(ZooError, ValueError):
    """A model, weights key or hub entry that does not exist."""


class DuplicateNameError(ZooError, ValueError):
    """A model name or alias registered twice."""


class ManifestError(ZooError):
    """A manifest file that cannot be read or does not follow the schema."""


class WeightsNotFoundError(ZooError, FileNotFoundError):
    """A known weight file that is not available locally (and could not be fetched)."""


class WeightsMismatchError(ZooError, ValueError):
    """A weight file whose tensors do not fit the architecture."""


class UnsafeCheckpointError(ZooError):
    """A checkpoint that would need to run code to load, or is not a weight file at all."""


class IntegrityError(ZooError):
    """A file whose sha256 is not the one it must have."""


class DownloadError(ZooError):
    """A transfer that failed for good (HTTP error, retries used up, offline)."""


class StorageError(ZooError):
    """A file or folder zoo must write that cannot be written (a read-only folder, a full disk, a link planted
    where zoo writes); the message names the path and what to do."""


class LockError(StorageError):
    """A lock that cannot be created, or that another process held past `ZOO_LOCK_TIMEOUT`."""


class HubError(ZooError):
    """A hub repository that cannot be listed, imported or loaded."""


class InvalidSpecError(HubError, ValueError):
    """A hub spec (`repo_or_dir`) or `source=` that zoo cannot read; a ValueError, as torch.hub raises for an
    unknown source or a malformed `owner/repo`."""


class HubconfNotFoundError(HubError, FileNotFoundError):
    """A local hub repo that is not a directory, or has no `hubconf.py`; a FileNotFoundError, as torch.hub's."""


class UnknownEntryPointError(UnknownNameError, HubError, RuntimeError):
    """An entry point that a hubconf does not define; also a RuntimeError, which torch.hub raises for it
    ("Cannot find callable ... in hubconf")."""


class MissingDependenciesError(HubError, ImportError, RuntimeError):
    """A hubconf's `dependencies` that are not importable; also a RuntimeError, which torch.hub raises for them
    ("Missing dependencies: ...")."""


class UnsafeArchiveError(HubError):
    """An archive member that would land outside the extraction folder, or an archive too big to extract."""


class ImageError(ZooError):
    """An input that is not a readable image (missing, not an image, truncated, too big)."""


def unknown(kind: str, name: str, choices: Iterable[str], where: str = "") -> UnknownNameError:
    """Build an UnknownNameError that suggests the closest known names."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if not close:
        lowered = name.lower()
        close = [c for c in choices if lowered in c.lower()][:3]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}{where}{hint}")
