"""Errors a user can cause and fix. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """Base class of every expected error raised by zoo."""


class UnknownNameError(ZooError, ValueError):
    """A model, weights key or hub entry that does not exist."""


class WeightsNotFoundError(ZooError, FileNotFoundError):
    """A known weight file that is not available locally (and could not be fetched)."""


class WeightsMismatchError(ZooError, ValueError):
    """A weight file whose tensors do not fit the architecture."""


class IntegrityError(ZooError):
    """A file whose sha256 is not the one it must have."""


class DownloadError(ZooError):
    """A transfer that failed for good (HTTP error, retries used up, offline)."""


class HubError(ZooError):
    """A hub repository that cannot be listed, imported or loaded."""


class MissingDependenciesError(HubError, ImportError):
    """A hubconf's `dependencies` that are not importable."""


def unknown(kind: str, name: str, choices: Iterable[str], where: str = "") -> UnknownNameError:
    """Build an UnknownNameError that suggests the closest known names."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if not close:
        lowered = name.lower()
        close = [c for c in choices if lowered in c.lower()][:3]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}{where}{hint}")
