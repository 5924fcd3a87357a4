"""`zoo.publish`: turn a trained model into a hashed weight file, a manifest entry and a hub entry point.

The file is `<key>-<first 8 hex of its sha256>.safetensors`, so a changed model gets a new name and never
overwrites a published one, and publishing the same tensors again changes nothing.

`zoo/__init__.py` imports this module eagerly: otherwise `import zoo.publish` (every published hubconf's
`from zoo.publish import load_published`) would bind the module, not the function, to `zoo.publish`. So
torch, safetensors and the registry load inside the functions that need them, and `import zoo` stays fast.
"""

from __future__ import annotations

import ast
import contextlib
import json
import keyword
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._common import show_path, show_url, write_text_atomic
from .errors import ZooError
from .hub.hubconf import declared_dependencies
from .store import integrity, paths
from .store.locks import lock_for
from .weights import manifest
from .weights.manifest import Weights, entry_to_weights

if TYPE_CHECKING:
    import torch

HUBCONF_HEADER = '''"""Hub entry points published with `zoo publish`; they load with torch.hub.load and zoo.load."""

import importlib.util as _util

dependencies = ["torch", "zoo"]

if _util.find_spec("zoo") is None:  # torch.hub alone would say "Missing dependencies: zoo", not what to install
    raise RuntimeError("these entry points load with zoo: pip install zoo-hub")
'''


def _state_dict(source: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and whatever their card says about them (arch, categories, preset, metrics...).

    The card of a file is the one in its safetensors metadata, updated by a JSON sidecar (`model.json`
    beside `model.safetensors`, as `zoo finetune` writes, or `<file>.json`).
    """
    import torch

    from .weights import cards, serialization

    if isinstance(source, torch.nn.Module):
        return dict(source.state_dict()), {}
    if isinstance(source, Mapping):
        return dict(source), {}
    path = Path(source)
    if path.is_dir():  # a `zoo finetune` output folder
        path = path / "model.safetensors"
    if not path.is_file():
        raise ZooError(f"{source}: no such checkpoint (a .pth/.safetensors file or a `zoo finetune` folder)")
    return serialization.load_state_dict(path), cards.read_card(path)


def entry_name(key: str) -> str:
    """The hubconf entry point published for weights `key` by default (`mlp.blobs` -> `mlp_blobs`)."""
    return re.sub(r"\W", "_", key)


def hub_entry(key: str, name: str | None = None, entry: str | None = None) -> str:
    """The entry point name for weights `key` (`<arch>.<name>`) published as `name`.

    `entry` if given; else `name` itself when it is the architecture's own name or one of its aliases (the
    Torch Hub tutorial's `custom_model`, an alias of `mlp`); else the key with `_` for `.` and `-`
    (`resnet18.colors` -> `resnet18_colors`).
    """
    from . import registry

    if entry is None and name is not None and name.isidentifier():
        try:
            same = registry.canonical_name(name) == key.partition(".")[0]
        except ZooError:
            same = False
        if same:
            entry = name
    if entry is None:
        return entry_name(key)
    if (
        not entry.isidentifier()
        or keyword.iskeyword(entry)
        or entry.startswith("_")
        or entry == "dependencies"
    ):
        raise ZooError(
            f"invalid entry point name {entry!r}: use a Python identifier not starting with '_' "
            "(and not `dependencies`)"
        )
    return entry


def _require_arch(source: Any) -> ZooError:
    from . import registry

    what = source if isinstance(source, (str, os.PathLike)) else "the model"
    return ZooError(
        f"--arch is required (arch= in Python): {what} records no architecture; "
        f"choose one of: {', '.join(registry.list_models())}"
    )


def publish(
    model_or_state_dict: Any,
    *,
    name: str,
    arch: str | None = None,
    out_dir: str | os.PathLike,
    manifest: str | os.PathLike | None = "weights_manifest.json",
    meta: dict[str, Any] | None = None,
    categories: list[str] | None = None,
    kwargs: dict[str, Any] | None = None,
    base_url: str | None = None,
    default: bool | None = None,
    repo: str | os.PathLike | None = None,
    entry: str | None = None,
) -> Weights:
    """Publish weights of `arch` as `<arch>.<name>`: a hashed safetensors file in `out_dir`, an entry in `manifest`.

    `model_or_state_dict`: a module, a state dict, a `.pth`/`.safetensors` file or a `zoo finetune` folder
    (whose arch, categories, preset and metrics are used). The weights are checked to build `arch` first.
    `meta` may carry license, dataset, metrics, source and the training command. `default`: make it the
    arch's default weights (None: only if the arch has none). `base_url`: the folder URL the file will be
    served from (recorded as the entry's URL). `repo`: also make that folder a hub repo with
    an entry point that loads the file (works with torch.hub.load and zoo.load), named `entry`, else `name`
    when it is the arch's name or an alias of it (`custom_model`), else `<arch>_<name>` (see `hub_entry`).
    The file carries its card (arch, key, num_classes, categories, preset, metrics, license) in its
    safetensors metadata. Returns the new Weights.
    """
    from safetensors.torch import save_file

    from . import registry
    from .weights import cards, presets

    tensors, card = _state_dict(model_or_state_dict)
    recorded = card.get("arch") if isinstance(card.get("arch"), str) else None
    if not arch and not recorded:
        raise _require_arch(model_or_state_dict)
    if arch and recorded and registry.canonical_name(recorded) != registry.canonical_name(arch):
        raise ZooError(
            f"{model_or_state_dict} records the architecture {recorded}, not {arch}; "
            "leave --arch out, or publish weights made for it"
        )
    arch = registry.canonical_name(arch or recorded)
    key = name if name.startswith(f"{arch}.") else f"{arch}.{name}"
    if not re.fullmatch(r"[A-Za-z0-9_]+\.[A-Za-z0-9_.-]+", key):
        raise ZooError(f"invalid weights name {key!r}: use letters, digits, '_', '-' and '.'")
    if base_url is not None:
        _check_base_url(base_url)
    entry_point = hub_entry(key, name, entry) if repo is not None else None
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    out_dir = Path(out_dir)
    manifest_path = Path(manifest) if manifest is not None else None
    repo_dir = Path(repo) if repo is not None else None

    source = _source_name(model_or_state_dict)
    kwargs = dict(kwargs or {})
    if card.get("num_classes") and "num_classes" not in kwargs:
        kwargs["num_classes"] = int(card["num_classes"])  # so pretrained=False builds the same head
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise ZooError(
            f"kwargs must be plain JSON data (numbers, strings, lists), not {_short(kwargs)}"
        ) from None
    n = kwargs.get("num_classes")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ZooError(f"num_classes must be a whole number >= 1, not {_short(n)}")
    _check_plain(meta or {}, "meta")
    _check_plain(categories or [], "categories")
    if card.get("transforms"):  # published presets must build wherever the file goes
        presets.check(card["transforms"], f"{source}: its card's transforms")

    cats = list(categories or card.get("categories") or []) or None
    embedded = _embedded_card(key, arch, kwargs, cats, card, meta, source)

    # Everything that can be refused is checked before the first write, so a refusal leaves no file behind.
    _check_target_dir(out_dir, "--out-dir")
    if manifest_path is not None:
        _check_manifest(manifest_path)
    if repo_dir is not None:
        _check_target_dir(repo_dir, "--repo")
        _check_manifest(repo_dir / "weights_manifest.json")
        _current_hubconf(repo_dir, entry_point, key)  # parses, no clash, declares zoo

    # Staged in the zoo home, not in out_dir: weights that do not build `arch` leave nothing there.
    staging = paths.make_dirs(paths.home() / "tmp")
    with tempfile.TemporaryDirectory(dir=staging, prefix="publish-") as tmp:
        staged = Path(tmp) / "staged.safetensors"
        save_file(tensors, str(staged), metadata=cards.metadata(embedded))  # the card travels with the file
        model = _check_builds(arch, staged, kwargs, cats, source)  # as every later load will build it
        digest = integrity.sha256_file(staged)
        file_name = f"{key.replace('.', '-')}-{digest[:8]}.safetensors"
        target = out_dir / file_name
        record: dict[str, Any] = {
            "arch": arch,
            "file_name": file_name,
            "urls": [f"{base_url.rstrip('/')}/{file_name}"] if base_url else [],
            "sha256": digest,
            "size": staged.stat().st_size,
            "kwargs": kwargs,
            "meta": {
                "num_params": sum(p.numel() for p in model.parameters()),
                **_card_meta(card),
                **(meta or {}),
            },
        }
        if cats:
            record["categories"] = cats
        if card.get("transforms"):
            record["transforms"] = card["transforms"]
        _check_plain(record, "the manifest entry")
        weights = entry_to_weights(key, record, {})  # categories are inline here
        if repo_dir is not None:  # the new hubconf must parse: refused here, before any write
            _hubconf_text(repo_dir, weights, entry_point)
        for existing in (target, *([repo_dir / "weights" / file_name] if repo_dir is not None else [])):
            _check_same_content(existing, digest)

        undo = _Undo()
        try:
            undo.make_dirs(out_dir)
            undo.install(staged, target, digest)
            if manifest_path is not None:
                undo.keep(manifest_path)
                _update_manifest(manifest_path, key, record, default)
            if repo_dir is not None:
                undo.make_dirs(repo_dir / "weights")
                undo.install(staged, repo_dir / "weights" / file_name, digest)
                with lock_for(repo_dir / "hubconf.py"):
                    undo.keep(repo_dir / "hubconf.py")
                    write_text_atomic(
                        _through_link(repo_dir / "hubconf.py"), _hubconf_text(repo_dir, weights, entry_point)
                    )
                undo.keep(repo_dir / "weights_manifest.json")
                _update_manifest(repo_dir / "weights_manifest.json", key, record, default)
        except BaseException as e:
            undo.roll_back()
            if isinstance(e, OSError):
                raise paths.cannot_write(e.filename or out_dir, e) from None
            raise
    return weights


def _check_base_url(base_url: str) -> None:
    """A published manifest is public: a base URL carrying a user:password or a query is refused."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https", "file") or "@" in parts.netloc or parts.query or parts.fragment:
        raise ZooError(
            f"--base-url {show_url(base_url)}: give a plain http(s) or file URL of the folder, without "
            "credentials or a query (the manifest that records it is public)"
        )


def _source_name(source: Any) -> str:
    """What to call the thing being published in a message: its path, or "the model"."""
    if not isinstance(source, (str, os.PathLike)):
        return "the model"
    return show_path(source)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What building hostile kwargs can raise from inside a model's constructor (a negative size, a 2**70-way head).
_BUILD_ERRORS = (TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError, MemoryError)


def _build(arch: str, staged: Path, kwargs: dict[str, Any], source: str) -> torch.nn.Module:
    from . import registry

    try:
        return registry.get_model(arch, weights=staged, device="cpu", **kwargs)
    except ZooError:
        raise  # already names the file and what does not fit (WeightsMismatchError, ManifestError...)
    except _BUILD_ERRORS as e:
        raise ZooError(
            f"{source}: the weights do not build {arch} with kwargs {_short(kwargs)} "
            f"({type(e).__name__}: {_short(str(e), 200)})"
        ) from None


def _output_size(arch: str, model: torch.nn.Module) -> int | None:
    """The number of classes a classifier outputs, None for other models (generators): for a builder that
    takes `num_classes`, its last Linear layer's size, as the tasks' head_of finds it; for any other model
    whose last layer is a Linear (the tutorial's MLP), that layer's size."""
    import inspect

    import torch

    from . import registry

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        return None
    if "num_classes" in inspect.signature(registry.get_builder(arch)).parameters:
        return linears[-1].out_features
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    return leaves[-1].out_features if isinstance(leaves[-1], torch.nn.Linear) else None


def _check_builds(
    arch: str, staged: Path, kwargs: dict[str, Any], categories: list[str] | None, source: str
) -> torch.nn.Module:
    """The model the staged file builds, refused (ZooError, before any write) unless it loads exactly as the
    published entry will: with the recorded kwargs, a head of `num_classes` outputs that is the file's own
    (never a fresh one put in its place), and one category per output."""
    n = kwargs.get("num_classes")
    # Built first without num_classes: a head of another size would be replaced by a fresh random one here,
    # while the manifest's loader passes num_classes to the constructor and then fails on the file's head.
    model = _build(arch, staged, {k: v for k, v in kwargs.items() if k != "num_classes"}, source)
    outputs = _output_size(arch, model)
    if n is not None and outputs is not None and n != outputs:
        raise ZooError(
            f"{source} records num_classes {n}, but its head has {outputs} outputs; "
            "nothing published (the entry could never load)"
        )
    if categories and outputs is not None and len(categories) != outputs:
        raise ZooError(
            f"{source}: {len(categories)} categories for a head of {outputs} outputs; give one name per "
            "class, in the order of the model's outputs (nothing published)"
        )
    return _build(arch, staged, kwargs, source) if n is not None else model


def _check_plain(value: Any, what: str) -> None:
    """Refuse data that the manifest (UTF-8 JSON) cannot hold: objects, NaN, text that is not Unicode."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ZooError(
            f"{what} holds text that is not valid Unicode (bytes of a non-UTF-8 file or folder name?); "
            "rename it, or give it as plain text"
        ) from None
    except RecursionError:
        raise ZooError(f"{what} is nested too deeply to be plain JSON data") from None
    except (TypeError, ValueError) as e:
        raise ZooError(f"{what} must be plain JSON data (numbers, strings, lists, objects): {e}") from None


def _check_target_dir(folder: Path, what: str) -> None:
    """Refuse a folder that cannot be created or written (under a file, read-only), before any write."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ZooError(f"{what} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ZooError(f"{what} {folder}: {existing} is not writable")


def _check_manifest(path: Path) -> None:
    """A manifest to update must be a readable manifest (or not exist yet) in a writable folder."""
    path = _through_link(path)
    if os.path.lexists(path):
        manifest.read_raw(path)  # ManifestError for a folder, bad JSON, another schema
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise ZooError(f"manifest {path}: its folder is not writable (it is replaced by a rename)")
    else:
        _check_target_dir(path.parent, "manifest folder of")


def _check_same_content(path: Path, digest: str) -> None:
    if path.exists() or os.path.islink(path):
        actual = integrity.sha256_file(path) if path.is_file() else "(not a regular file)"
        if actual != digest:
            raise ZooError(
                f"{path} exists with other content (sha256 {actual}, expected {digest}); "
                "published files are never overwritten: move it away first"
            )


class _Undo:
    """What a publish has written so far, so a failure midway puts every file back as it was."""

    def __init__(self) -> None:
        self._steps: list[Any] = []
        self._seen: set[Path] = set()

    def make_dirs(self, folder: Path) -> None:
        missing = []
        p = folder
        while not os.path.lexists(p) and p != p.parent:
            missing.append(p)
            p = p.parent
        folder.mkdir(parents=True, exist_ok=True)
        for d in missing:  # innermost first: removed in that order if still empty
            self._steps.append(lambda d=d: d.rmdir())

    def keep(self, path: Path) -> None:
        """Remember `path`'s bytes (or its absence) to restore them on failure."""
        path = _through_link(path)
        if path in self._seen:
            return
        self._seen.add(path)
        if path.is_file():
            old = path.read_bytes()
            self._steps.append(lambda: _restore(path, old))
        else:
            self._steps.append(lambda: path.unlink(missing_ok=True))

    def install(self, staged: Path, target: Path, digest: str) -> None:
        if target.exists():  # same bytes (checked before any write): published before, nothing to do
            integrity.remember(target, digest)
            return
        self._seen.add(target)
        self._steps.append(lambda: target.unlink(missing_ok=True))
        _copy_into_place(staged, target)
        integrity.remember(target, digest)

    def roll_back(self) -> None:
        for step in reversed(self._steps):
            with contextlib.suppress(OSError):
                step()
        manifest.load.cache_clear()


def _restore(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".zoo-", suffix=".tmp")  # short: see _copy_into_place
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _copy_into_place(staged: Path, target: Path) -> None:
    """Copy `staged` beside `target` under a private name, make it readable by others, rename it in."""
    # A short private name, not one built from the target's: a key near the 255-byte limit of a file name
    # must still publish.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".zoo-", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(staged, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)  # a web server must be able to serve it
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _embedded_card(
    key: str,
    arch: str,
    kwargs: dict[str, Any],
    categories: list[str] | None,
    card: dict[str, Any],
    meta: dict[str, Any] | None,
    source: str = "the model",
) -> dict[str, Any]:
    """The card written into the published file: enough to use it without the manifest. Fields taken from
    the source's card (metrics with NaN, say) that JSON cannot hold are one ZooError, before any write."""
    embedded: dict[str, Any] = {"arch": arch, "key": key}
    if kwargs.get("num_classes") or categories:
        embedded["num_classes"] = int(kwargs.get("num_classes") or len(categories or []))
    if categories:
        embedded["categories"] = categories
    if card.get("transforms"):
        embedded["transforms"] = card["transforms"]
    metrics = (meta or {}).get("metrics") or card.get("metrics")
    if metrics:
        embedded["metrics"] = metrics
    for field in ("license", "dataset", "source"):
        if (meta or {}).get(field):
            embedded[field] = meta[field]
    _check_plain(embedded, f"the card of {source}")  # NaN metrics, objects: refused before any write
    return json.loads(json.dumps(embedded, allow_nan=False))


def _card_meta(card: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if card.get("metrics"):
        meta["metrics"] = {"validation": card["metrics"]}
    if card.get("settings"):
        meta["training"] = card["settings"]
    if card.get("base_weights"):
        meta["base_weights"] = card["base_weights"]
    return meta


def _update_manifest(path: Path, key: str, entry: dict[str, Any], default: bool | None) -> None:
    path = _through_link(path)
    with lock_for(path):
        data = (
            manifest.read_raw(path)
            if path.exists()
            else {"schema_version": manifest.SCHEMA_VERSION, "weights": {}, "defaults": {}}
        )
        if data["weights"].get(key) == entry and (
            default is not True or data["defaults"].get(entry["arch"]) == key
        ):
            return  # re-publishing the same file changes nothing
        data["weights"][key] = entry
        if default or (default is None and entry["arch"] not in data["defaults"]):
            data["defaults"][entry["arch"]] = key
        manifest.write_raw(data, path)


def write_hub_entry(repo: Path, weights: Weights, weight_file: Path, entry: str | None = None) -> Path:
    """Make `repo` a hub repo with an entry point `entry` (default: named after `weights.key`) that loads
    `weight_file`. The hubconf is checked (parses, no clash, declares zoo) before anything is written."""
    entry = entry or entry_name(weights.key)
    _check_target_dir(repo, "repo")
    with lock_for(repo / "hubconf.py"):
        text = _hubconf_text(repo, weights, entry)
        target = repo / "weights" / weights.file_name
        _check_same_content(target, weights.sha256)
        undo = _Undo()
        try:
            undo.make_dirs(repo / "weights")
            undo.install(Path(weight_file), target, weights.sha256)
            write_text_atomic(_through_link(repo / "hubconf.py"), text)
        except BaseException:
            undo.roll_back()
            raise
    return repo / "hubconf.py"


def _through_link(path: Path) -> Path:
    """Where a write of the user's `path` must go: a link the user made (a manifest or hubconf kept in another
    folder) is written through, so the file it names is updated and the link stays; a rename onto the link
    itself would replace it with a copy, and the user's real file would never change."""
    return path.resolve() if path.is_symlink() else path


def _current_hubconf(repo: Path, entry: str, key: str) -> str:
    """The repo's hubconf text (a new header when there is none), refused when it cannot take the entry."""
    hubconf = repo / "hubconf.py"
    if not os.path.lexists(hubconf):
        return HUBCONF_HEADER
    if (
        not hubconf.is_file()
    ):  # a FIFO would block the read forever; a folder or a dangling link cannot be read
        raise ZooError(f"{hubconf} is not a regular file; hubconf unchanged")
    try:
        text = hubconf.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ZooError(f"{hubconf} is not UTF-8 text; hubconf unchanged") from None
    except OSError as e:
        raise ZooError(f"cannot read {hubconf}: {e.strerror or e}") from None
    try:
        ast.parse(text)
    except (SyntaxError, ValueError) as e:
        raise ZooError(
            f"{hubconf} is not valid Python ({getattr(e, 'msg', e)}); fix it first, hubconf unchanged"
        ) from None
    _check_hubconf(hubconf, text, entry, key)
    return text


def _hubconf_text(repo: Path, weights: Weights, entry: str) -> str:
    """The repo's hubconf with the entry point for `weights` added or replaced; parsed before it is used."""
    text = _current_hubconf(repo, entry, weights.key)
    summary = str(weights.meta.get("docs") or f"{weights.arch} with the published weights {weights.key}")
    # Escaped for a triple-quoted docstring (and non-Unicode text as escapes); the result is parsed below.
    summary = summary.rstrip(".").replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    summary = summary.encode("utf-8", "backslashreplace").decode("utf-8")
    marker = f"# --- zoo publish: {entry} ({weights.key}) ---"
    block = f'''

{marker}
def {entry}(pretrained: bool = True, **kwargs):
    """{summary}.

    Args:
        pretrained: load the published weights (file weights/{weights.file_name}, sha256 {weights.sha256}).
        **kwargs: passed to zoo.get_model("{weights.arch}", ...), e.g. device="cpu".
    """
    from zoo.publish import load_published

    return load_published(
        __file__, "weights/{weights.file_name}", "{weights.arch}", "{weights.sha256}", pretrained,
        {weights.kwargs!r}, {weights.categories!r}, **kwargs
    )
# --- end: {entry} ---
'''
    pattern = re.compile(rf"\n\n# --- zoo publish: {entry} \(.*?\) ---\n.*?# --- end: {entry} ---\n", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + block
    try:
        ast.parse(text)
    except SyntaxError as e:
        raise ZooError(
            f"the entry point for {weights.key} would not be valid Python ({e.msg}); hubconf unchanged"
        ) from None
    return text


def _check_hubconf(hubconf: Path, text: str, entry: str, key: str) -> None:
    """Refuse to publish into a hubconf where the entry would clash or could not load."""
    own = re.search(rf"^# --- zoo publish: {entry} \((.*?)\) ---$", text, re.M)
    if own and own.group(1) != key:
        raise ZooError(f"{hubconf}: entry point {entry} already serves {own.group(1)}; choose another name")
    if not own and re.search(
        rf"^(def|class|async def) {entry}\b|^{entry}\s*[:=]|^import .*\b{entry}\b|^from .* import .*\b{entry}\b",
        text,
        re.M,
    ):
        raise ZooError(f"{hubconf} already defines {entry}; choose another name")
    if hubconf.exists():
        deps = declared_dependencies(hubconf.parent)
        if "zoo" not in deps:
            raise ZooError(
                f'{hubconf}: add "zoo" to its `dependencies` list first (published entry points load with zoo)'
            )


def load_published(
    hubconf_file: str,
    relative_path: str,
    arch: str,
    sha256: str,
    pretrained: bool = True,
    arch_kwargs: dict[str, Any] | None = None,
    categories: list[str] | None = None,
    **kwargs: Any,
) -> torch.nn.Module:
    """Build `arch` with a repo's published weight file, verified against `sha256` first (hubconf helper)."""
    from . import registry

    path = Path(hubconf_file).resolve().parent / relative_path
    if not pretrained:
        return registry.get_model(arch, weights=None, **{**(arch_kwargs or {}), **kwargs})
    integrity.check(path, sha256, what=path.name)
    model = registry.get_model(arch, weights=path, **{**(arch_kwargs or {}), **kwargs})
    if categories:
        model.categories = list(categories)  # the labels travel with the model
    return model
