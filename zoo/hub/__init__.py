"""The hub: load, list and help on hub repos (api), specs, fetch, snapshots, archives, trust, hubconf
import and `zoo check`."""

from .api import help, list, load, resolve_repo

__all__ = ["help", "list", "load", "resolve_repo"]
