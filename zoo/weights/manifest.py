"""The weights manifest: every known weight file, where it lives, its hash, size and metadata.

`weights_manifest.json` sits at the repository root; the wheel carries it as `zoo/weights/data/`. Its schema:

    {"schema_version": 1,
     "categories": {"imagenet1k": ["tench", ...]},        # shared label lists, referred to by name
     "defaults": {"resnet101": "resnet101.imagenet1k_v2"},
     "weights": {"resnet101.imagenet1k_v2": {"arch", "file_name", "urls", "sha256", "size",
                                             "categories", "transforms", "kwargs", "meta"}}}
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .._common import write_text_atomic
from ..errors import ManifestError

SCHEMA_VERSION = 1
MANIFEST_NAME = "weights_manifest.json"


def packaged_manifest() -> Path:
    """The manifest zoo ships: inside the package (`zoo/weights/data/`, where the wheel carries it), else at
    the root of the source tree (a checkout, an editable install, a torch.hub snapshot of this repo)."""
    inside = Path(str(resources.files(__package__) / "data" / MANIFEST_NAME))
    return inside if inside.is_file() else Path(__file__).resolve().parents[2] / MANIFEST_NAME


DEFAULT_MANIFEST = packaged_manifest()


@dataclass(frozen=True)
class Weights:
    """One weight file of the zoo: identity, origin, integrity and metadata."""

    key: str
    arch: str
    file_name: str
    urls: tuple[str, ...]
    sha256: str
    size: int | None = None
    categories: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    transforms_spec: dict[str, Any] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """The part of the key after the architecture, e.g. `imagenet1k_v1`."""
        return self.key.split(".", 1)[1]

    @property
    def sha256_is_prefix(self) -> bool:
        """True when only a prefix of the file's sha256 is known (torchvision and GAN zoo file names)."""
        return len(self.sha256) < 64

    def transforms(self) -> Any:
        """The preprocessing that matches these weights (a torchvision preset where there is one)."""
        from . import presets  # torchvision's transforms load only when a preset is asked for

        return presets.build(self.transforms_spec)

    def __repr__(self) -> str:
        return f"Weights({self.key!r}, file={self.file_name!r})"


def manifest_path() -> Path:
    """The manifest in use: `ZOO_MANIFEST` if set, else the one zoo ships (see packaged_manifest)."""
    return Path(os.environ.get("ZOO_MANIFEST") or DEFAULT_MANIFEST)


def read_raw(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read and validate a manifest file, returning its JSON object."""
    path = Path(path) if path is not None else manifest_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ManifestError(f"weights manifest not found: {path}") from e
    except json.JSONDecodeError as e:
        raise ManifestError(f"weights manifest {path} is not valid JSON: {e}") from e
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"weights manifest {path} has schema_version {version!r}; expected {SCHEMA_VERSION}"
        )
    for key in ("weights", "defaults"):
        if not isinstance(data.get(key), dict):
            raise ManifestError(f"weights manifest {path} has no {key!r} table")
    return data


def write_raw(data: dict[str, Any], path: str | os.PathLike | None = None) -> None:
    """Write a manifest atomically, so a crash never leaves a truncated file."""
    path = Path(path) if path is not None else manifest_path()
    write_text_atomic(path, dumps(data))
    load.cache_clear()


def dumps(data: dict[str, Any]) -> str:
    """The manifest's canonical text (stable key order, so regeneration diffs are meaningful)."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def entry_to_weights(key: str, entry: dict[str, Any], categories: dict[str, list[str]]) -> Weights:
    """Turn one manifest entry into a `Weights`, resolving a shared category list by name."""
    cats = entry.get("categories")
    if isinstance(cats, str):
        cats = categories[cats]
    return Weights(
        key=key,
        arch=entry["arch"],
        file_name=entry["file_name"],
        urls=tuple(entry.get("urls", ())),
        sha256=entry["sha256"],
        size=entry.get("size"),
        categories=list(cats) if cats is not None else None,
        meta=dict(entry.get("meta", {})),
        transforms_spec=entry.get("transforms"),
        kwargs=dict(entry.get("kwargs", {})),
    )


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: weights by key and the default key per architecture."""

    weights: dict[str, Weights]
    defaults: dict[str, str]
    path: Path

    def for_arch(self, arch: str) -> list[Weights]:
        return [w for k, w in sorted(self.weights.items()) if w.arch == arch]

    def default_for(self, arch: str) -> Weights | None:
        """The default weights of `arch`, or None when it has none."""
        key = self.defaults.get(arch)
        return self.weights.get(key) if key else None


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int, size: int) -> Manifest:
    raw = read_raw(path)
    cats = raw.get("categories", {})
    weights = {k: entry_to_weights(k, e, cats) for k, e in raw["weights"].items()}
    return Manifest(weights=weights, defaults=dict(raw["defaults"]), path=path)


def load(path: str | os.PathLike | None = None) -> Manifest:
    """The parsed manifest, re-read when the file changes (e.g. after `zoo publish`)."""
    path = Path(path) if path is not None else manifest_path()
    try:
        stat = path.stat()
    except FileNotFoundError as e:
        raise ManifestError(f"weights manifest not found: {path}") from e
    return _load(path, stat.st_mtime_ns, stat.st_size)


load.cache_clear = _load.cache_clear  # type: ignore[attr-defined]
