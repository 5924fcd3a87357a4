"""The weights manifest: every known weight file, where it lives, its hash, size and metadata.

`weights_manifest.json` sits at the repository root; the wheel carries it as `zoo/weights/data/`. Its schema:

    {"schema_version": 1,
     "categories": {"imagenet1k": ["tench", ...]},        # shared label lists, referred to by name
     "defaults": {"resnet101": "resnet101.imagenet1k_v2"},
     "weights": {"resnet101.imagenet1k_v2": {"arch", "file_name", "urls", "sha256", "size",
                                             "categories", "transforms", "kwargs", "meta", "files"}}}

Weights that span several files (the book's NeuralTalk2: decoder, vocabulary, encoder) name the others in
`files`, by role: `{"infos": {"file_name", "urls", "sha256", "size"}, "encoder": {..., "parts": [...]}}`.
Each is resolved and verified like the main file; a file with `parts` is joined from them (each verified
first) in the zoo cache. An empty `sha256` means the hash is not known: the file is used with a warning, and
`zoo cache verify --pin` records the hash of the copy you have, after which every later copy must match it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
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
    # The other files these weights need, by role (`infos`, `encoder`), each a Weights of its own
    # (key `<key>:<role>`); `parts` are the pieces this file is joined from (key `<key>[<i>]`).
    files: dict[str, Weights] = field(default_factory=dict)
    parts: tuple[Weights, ...] = ()

    def every_file(self) -> list[Weights]:
        """This file, the other files it needs and the parts they are joined from: all that a fetch gets."""
        out = [self]
        for w in [*self.files.values(), *self.parts]:
            out += w.every_file()
        return out

    @property
    def tag(self) -> str:
        """The part of the key after the architecture, e.g. `imagenet1k_v1`."""
        return self.key.split(".", 1)[1]

    @property
    def sha256_is_prefix(self) -> bool:
        """True when only a prefix of the file's sha256 is known (torchvision and GAN zoo file names), or
        none of it (an empty sha256)."""
        return len(self.sha256) < 64

    def transforms(self) -> Any:
        """The preprocessing that matches these weights (a torchvision preset where there is one)."""
        from . import presets  # torchvision's transforms load only when a preset is asked for

        # An unknown preset, field or value is one ManifestError (presets.build checks every field).
        return presets.build(self.transforms_spec, f"weights {self.key!r}: the manifest's transforms")

    def __post_init__(self) -> None:
        # Every path the zoo writes is built from `file_name`: however a Weights was made (a manifest, a
        # hub repo, by hand), it must not name a place outside the folder it is joined to.
        check_file_name(self.file_name, f"weights {self.key!r}")

    def __repr__(self) -> str:
        return f"Weights({self.key!r}, file={self.file_name!r})"


def manifest_path() -> Path:
    """The manifest in use: `ZOO_MANIFEST` if set, else the one zoo ships (see packaged_manifest)."""
    return Path(os.path.expanduser(os.environ.get("ZOO_MANIFEST") or DEFAULT_MANIFEST))


def read_raw(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read and validate a manifest file, returning its JSON object.

    Anything that is not a readable JSON object of the schema (a folder, an unreadable or non-UTF-8 file,
    a list at the top level) is one ManifestError naming the file.
    """
    path = Path(path) if path is not None else manifest_path()
    try:
        if path.is_dir():
            raise IsADirectoryError
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read forever
            raise ManifestError(f"weights manifest {path} is not a regular file")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ManifestError(f"weights manifest not found: {path}") from e
    except IsADirectoryError:
        raise ManifestError(f"weights manifest {path} is a folder, not a JSON file") from None
    except OSError as e:
        raise ManifestError(f"cannot read weights manifest {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ManifestError(f"weights manifest {path} is not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise ManifestError(f"weights manifest {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"weights manifest {path} holds a JSON {_kind(data)}, not an object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"weights manifest {path} has schema_version {version!r}; expected {SCHEMA_VERSION}"
        )
    for key in ("weights", "defaults"):
        if not isinstance(data.get(key), dict):
            raise ManifestError(f"weights manifest {path} has no {key!r} table")
    if not isinstance(data.get("categories", {}), dict):
        raise ManifestError(f"weights manifest {path}: 'categories' must be an object of label lists")
    return data


def write_raw(data: dict[str, Any], path: str | os.PathLike | None = None) -> None:
    """Write a manifest atomically, so a crash never leaves a truncated file."""
    path = Path(path) if path is not None else manifest_path()
    write_text_atomic(path, dumps(data))
    load.cache_clear()


def dumps(data: dict[str, Any]) -> str:
    """The manifest's canonical text (stable key order, so regeneration diffs are meaningful)."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# A manifest's file names become paths in the zoo cache and URLs on a mirror: only plain names are taken.
_MAX_NAME = 200  # bytes; file systems stop at 255 and the cache adds `.part` / `.lock` suffixes
_HEX = re.compile(r"[0-9a-fA-F]*")  # empty: not known (the book's NeuralTalk2 files)
_RESERVED_SUFFIXES = (".part", ".lock", ".tmp")  # the cache's own download parts, locks and temporaries


def check_file_name(name: Any, where: str) -> str:
    """`name` if it is a plain file name (no folder part, `..`, absolute path, control character or
    reserved suffix), else ManifestError naming `where`."""
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{where}: file_name must be a non-empty string, not {name!r}")
    bad = (
        "/" in name
        or "\\" in name
        or name in (".", "..")
        or name.startswith(".")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or os.path.isabs(name)
        or ":" in name  # a Windows drive (`C:x`) or stream (`x:y`)
        or name.endswith(_RESERVED_SUFFIXES)
        or len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME
    )
    if bad:
        raise ManifestError(
            f"{where}: file_name {name!r} is not a plain file name (no folders, '..', leading '.', "
            f"control characters or {'/'.join(_RESERVED_SUFFIXES)} suffix; at most {_MAX_NAME} bytes)"
        )
    return name


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def entry_to_weights(
    key: str, entry: dict[str, Any], categories: dict[str, list[str]], *, checked: set[str] | None = None
) -> Weights:
    """Turn one manifest entry into a `Weights`, resolving a shared category list by name.

    Every field is checked first, so a hostile or broken manifest is one ManifestError naming the key and
    field, never a KeyError or TypeError later (in `zoo list`, `zoo fetch`, the cache commands, a build).
    `checked` collects the shared lists already found to be lists of strings, for callers that convert
    many entries of one manifest (115 entries share ImageNet's 1000 names: checking them once per entry was
    most of the 34 ms a manifest took to load).
    """
    where = f"weights manifest entry {key!r}"

    def fail(what: str) -> ManifestError:
        return ManifestError(f"{where}: {what}")

    if not isinstance(entry, dict):
        raise fail(f"must be an object, not a {_kind(entry)}")
    arch = entry.get("arch")
    if not isinstance(arch, str) or not arch or "." in arch:
        raise fail(f"'arch' must be a model name, not {arch!r}")
    if not key.startswith(f"{arch}.") or len(key) == len(arch) + 1:
        raise fail(f"the key must be '{arch}.<tag>' (its arch, a dot and a tag)")
    file_name, urls, sha256, size = _file_fields(entry, where)
    files = entry.get("files", {})
    if not isinstance(files, dict):
        raise fail("'files' must be an object of the other files by role")
    companions = {role: _companion(key, arch, role, spec, where) for role, spec in files.items()}
    cats = entry.get("categories")
    if isinstance(cats, str):
        if cats not in categories:
            raise fail(f"'categories' names the shared list {cats!r}, which the manifest does not have")
        name, cats = cats, categories[cats]
        if checked is None or name not in checked:
            if not _string_list(cats):
                raise fail("the shared categories it names are not a list of strings")
            if checked is not None:
                checked.add(name)
    elif cats is not None and not _string_list(cats):
        raise fail("'categories' must be a list of strings or the name of a shared list")
    transforms = entry.get("transforms")
    if transforms is not None and not (
        isinstance(transforms, dict) and isinstance(transforms.get("preset"), str)
    ):
        raise fail("'transforms' must be null or an object with a 'preset' name")
    for name in ("meta", "kwargs"):
        if not isinstance(entry.get(name, {}), dict):
            raise fail(f"{name!r} must be an object")
    meta = entry.get("meta", {})
    metrics = meta.get("metrics", {})
    # Data sets to their metrics (torchvision's form), or flat names to numbers (`zoo publish --metric`,
    # since release 0.1.0): manifests already published in either form stay readable.
    if not isinstance(metrics, dict) or not all(
        _is_number(v) or (isinstance(v, dict) and all(_is_number(x) for x in v.values()))
        for v in metrics.values()
    ):
        raise fail("'meta.metrics' must map names to numbers, or data sets to objects of numbers")
    return Weights(
        key=key,
        arch=arch,
        file_name=file_name,
        urls=tuple(urls),
        sha256=sha256.lower(),
        size=size,
        categories=list(cats) if cats is not None else None,
        meta=dict(meta),
        transforms_spec=transforms,
        kwargs=dict(entry.get("kwargs", {})),
        files=companions,
    )


def _file_fields(entry: dict[str, Any], where: str) -> tuple[str, list[str], str, int | None]:
    """An entry's (or one of its other files') file_name, urls, sha256 and size, each checked."""
    file_name = check_file_name(entry.get("file_name"), where)
    urls = entry.get("urls", [])
    if not _string_list(urls) or not all(urls):
        raise ManifestError(f"{where}: 'urls' must be a list of URL strings")
    sha256 = entry.get("sha256")
    if not isinstance(sha256, str) or not _HEX.fullmatch(sha256) or len(sha256) > 64:
        raise ManifestError(
            f"{where}: 'sha256' must be hex digits (64, the known prefix of them, or empty if unknown)"
        )
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ManifestError(f"{where}: 'size' must be a whole number of bytes (>= 0) or null, not {size!r}")
    return file_name, urls, sha256, size


_ROLE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_FILE_KEYS = {"file_name", "urls", "sha256", "size", "parts"}


def _companion(key: str, arch: str, role: Any, spec: Any, where: str) -> Weights:
    """One of an entry's other files (`files.<role>`), with the parts it is joined from, as a Weights."""
    if not isinstance(role, str) or not _ROLE.fullmatch(role):
        raise ManifestError(f"{where}: 'files' roles must be lower-case names, not {role!r}")
    where = f"{where}, file {role!r}"
    if not isinstance(spec, dict) or not set(spec) <= _FILE_KEYS:
        raise ManifestError(f"{where}: must be an object of {', '.join(sorted(_FILE_KEYS))}")
    file_name, urls, sha256, size = _file_fields(spec, where)
    raw_parts = spec.get("parts", [])
    if not isinstance(raw_parts, list) or len(raw_parts) == 1:
        raise ManifestError(f"{where}: 'parts' must be a list of two or more files")
    parts = []
    for i, part in enumerate(raw_parts):
        at = f"{where}, part {i + 1}"
        if not isinstance(part, dict) or not set(part) <= _FILE_KEYS - {"parts"}:
            raise ManifestError(f"{at}: must be an object of file_name, urls, sha256 and size")
        name, part_urls, part_sha, part_size = _file_fields(part, at)
        parts.append(
            Weights(f"{key}:{role}[{i + 1}]", arch, name, tuple(part_urls), part_sha.lower(), part_size)
        )
    return Weights(f"{key}:{role}", arch, file_name, tuple(urls), sha256.lower(), size, parts=tuple(parts))


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
    checked: set[str] = set()
    weights = {k: entry_to_weights(k, e, cats, checked=checked) for k, e in raw["weights"].items()}
    for arch, key in raw["defaults"].items():
        target = weights.get(key) if isinstance(key, str) else None
        if target is None:
            raise ManifestError(
                f"weights manifest {path}: the default of {arch!r} is {key!r}, which is no entry"
            )
        if target.arch != arch:
            raise ManifestError(
                f"weights manifest {path}: the default of {arch!r} is {key!r}, weights for {target.arch!r}"
            )
    return Manifest(weights=weights, defaults=dict(raw["defaults"]), path=path)


def load(path: str | os.PathLike | None = None) -> Manifest:
    """The parsed manifest, re-read when the file changes (e.g. after `zoo publish`)."""
    path = Path(path) if path is not None else manifest_path()
    try:
        stat = path.stat()
    except FileNotFoundError as e:
        raise ManifestError(f"weights manifest not found: {path}") from e
    except OSError as e:
        raise ManifestError(f"cannot read weights manifest {path}: {e.strerror or e}") from None
    return _load(path, stat.st_mtime_ns, stat.st_size)


load.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


def _is_number(value: object) -> bool:
    # None: a metric torchvision does not know (its NaN, e.g. VGG-16's features-only weights), written as null.
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
