"""The one code path every builder goes through: pick weights, build, load, adapt the head, move."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.instancenorm import _InstanceNorm

from ..devices import resolve_device
from ..errors import InvalidArgumentError, ManifestError, WeightsMismatchError
from ..weights import manifest
from ..weights.files import load_state_dict
from ..weights.manifest import Weights
from ..weights.selection import select_weights

StateDict = dict[str, torch.Tensor]


def build(
    arch: str,
    make: Callable[..., nn.Module],
    *,
    weights: Any,
    pretrained: bool,
    progress: bool,
    device: Any,
    kwargs: dict[str, Any],
    num_classes: int | None = None,
    head: str | tuple[str, ...] | None = None,
    infer_kwargs: Callable[[StateDict], dict[str, Any]] | None = None,
    prepare: Callable[[StateDict], StateDict] | None = None,
    finish: Callable[[nn.Module], None] | None = None,
    load: Callable[[Weights | Path, bool], StateDict] | None = None,
) -> nn.Module:
    """Build `arch` with `make(**kwargs)`, loading `weights` if any.

    With weights, the model is built on the meta device (no random init is spent) and the tensors are
    assigned straight from the memory-mapped file. `head` names the classifier layer (or layers: Inception's
    auxiliary heads) that a different `num_classes` replaces with a fresh one; `infer_kwargs` reads architecture sizes from a state dict;
    `prepare` adapts legacy key sets; `finish` runs after loading; `load(selected, progress)` replaces the
    reading of the one selected file, for families whose weights span several files (neuraltalk2).
    """
    if num_classes is not None and (
        not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1
    ):
        raise InvalidArgumentError(f"num_classes must be a whole number >= 1, not {num_classes!r}")
    if pretrained and weights is None:
        weights = pretrained_weights(arch)
    resolved = select_weights(arch, weights)
    # None keeps the model on the CPU, as torchvision and torch.hub do: the book's `model(cpu_batch)` then
    # works on a GPU machine too. Tasks choose the best device themselves.
    target = torch.device("cpu") if device is None else resolve_device(device)
    if resolved is None:
        if num_classes is not None:
            kwargs = {**kwargs, "num_classes": num_classes}
        model = make(**kwargs)
        # Built under `with torch.device("meta"):` (to inspect an architecture without memory, as torchvision
        # allows; `zoo check` builds every entry so): a meta model has nothing to copy to the CPU.
        if device is None and next(model.parameters(), torch.empty(0)).is_meta:
            return model
        return model.to(target)

    name = resolved.key if isinstance(resolved, Weights) else str(resolved)
    read = load if load is not None else lambda w, p: load_state_dict(w, progress=p)
    state_dict = _strip_data_parallel(read(resolved, progress))
    if prepare is not None:
        state_dict = prepare(state_dict)
    try:
        found = infer_kwargs(state_dict) if infer_kwargs else {}
    except WeightsMismatchError as e:
        raise WeightsMismatchError(f"weights {name} do not fit {arch}: {e}") from None
    from_manifest = resolved.kwargs if isinstance(resolved, Weights) else {}
    given = kwargs
    kwargs = {**found, **from_manifest, **kwargs}
    try:
        with _skip_init(every_tensor=True):
            model = make(**kwargs)
    except _BUILD_ERRORS as e:
        _blame(e, make, given, from_manifest, found, name, arch)
        raise
    _assign(model, state_dict, name, arch)
    if finish is not None:
        finish(model)
    if head is not None and num_classes is not None:
        replace_head(model, head, num_classes)
    # Every tensor is on the CPU already (the file's, or made by the build); `.to` would only walk the modules
    # (3 ms of a 15 ms shufflenet build).
    return model if target.type == "cpu" else _to_device(model, target)


def _to_device(model: nn.Module, target: torch.device) -> nn.Module:
    """Move a freshly loaded model to `target`. To a GPU, each tensor goes from the memory-mapped file
    through pinned memory with a non-blocking copy, so the copies queue up instead of each waiting for the
    last; the model is ready (synchronised) when returned, as after `.to`."""
    if target.type != "cuda":
        return model.to(target)
    try:
        model = model._apply(lambda t: t.pin_memory().to(target, non_blocking=True))
    except RuntimeError:  # pinning refused (a locked-memory limit): what is left goes the plain way
        return model.to(target)
    torch.cuda.current_stream(target).synchronize()
    return model


_BUILD_ERRORS = (TypeError, ValueError, RuntimeError, ZeroDivisionError, OverflowError)


def _blame(
    error: Exception,
    make: Callable[..., nn.Module],
    given: dict[str, Any],
    from_manifest: dict[str, Any],
    found: dict[str, Any],
    name: str,
    arch: str,
) -> None:
    """Raise a ZooError when sizes from the manifest or the file (not the caller's own kwargs) build nothing."""
    try:
        with torch.device("meta"), _skip_init():
            make(**given)
    except _BUILD_ERRORS:
        return  # the caller's own arguments fail alone: their error, as torchvision raises it
    detail = " ".join(str(error).split())[:300]
    if from_manifest:
        raise ManifestError(
            f"weights {name}: the manifest's kwargs {from_manifest!r} do not build {arch}: {detail}"
        ) from None
    if found:
        raise WeightsMismatchError(
            f"weights {name} do not fit {arch}: the sizes read from the file, {found!r}, build nothing: {detail}"
        ) from None


# Reentrant: a builder may build another model with weights inside (a hub entry that loads a pretrained
# zoo backbone, itself built under `zoo check`'s meta_build); the outermost level patches and restores.
_INIT_LOCK = threading.RLock()
_IMPORTERS_OF_INIT = (torch.nn.modules.activation, torch.nn.modules.transformer)
_building = threading.local()


@contextlib.contextmanager
def meta_build() -> Iterator[None]:
    """Build modules on the meta device with torch.nn.init skipped (to inspect an architecture without
    memory: `zoo check`)."""
    with torch.device("meta"), _skip_init():
        yield


@contextlib.contextmanager
def _skip_init(*, every_tensor: bool = False) -> Iterator[None]:
    """Skip torch.nn.init on meta tensors, or (`every_tensor`) on every tensor this thread makes meanwhile.

    Even on the meta device, torch.nn.init's ops dispatch through Python decompositions (about 2 ms each),
    which is most of the build time of a deep net, and the weights overwrite them anyway. A pretrained
    build goes further: it builds on the CPU with no init at all (torch.empty only reserves the memory,
    which the file's tensors then replace), since torch's meta-device mode costs a Python call per tensor
    op: resnet101 builds in 11.5 ms so against 16.4 ms on meta, shufflenet_v2_x0_5 in 6.1 against 8.6.
    The patch is process-wide, so the stand-ins skip only meta tensors and the building thread's: another
    thread building a random model meanwhile still gets its init. Nested uses in one thread each keep their
    own `every_tensor` and leave the outer one's as it was.
    """
    with _INIT_LOCK:
        depth = getattr(_building, "depth", 0)
        outer = getattr(_building, "every_tensor", False)
        places = _patch_inits() if depth == 0 else []
        _building.depth, _building.every_tensor = depth + 1, every_tensor
        try:
            yield
        finally:
            _building.depth, _building.every_tensor = depth, outer
            for module, name, fn in places:
                setattr(module, name, fn)


def _patch_inits() -> list[tuple[Any, str, Callable[..., Any]]]:
    """Put the stand-ins in place of torch.nn.init's functions; the (module, name, function) replaced."""
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    inits = {id(getattr(nn.init, n)) for n in names}
    # torch.nn.init itself, and the modules that import its functions by name (MultiheadAttention's
    # xavier_uniform_: left running, it cost vit_b_16's CPU build 50 ms).
    places = [
        (module, name, fn)
        for module in (nn.init, *_IMPORTERS_OF_INIT)
        for name, fn in vars(module).items()
        if id(fn) in inits and name.endswith("_")
    ]
    for module, name, fn in places:
        setattr(module, name, _unless_skipped(fn))
    return places


def _unless_skipped(init: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(init)
    def skip(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if getattr(_building, "every_tensor", False) or getattr(tensor, "is_meta", False):
            return tensor
        return init(tensor, *args, **kwargs)

    return skip


def _strip_data_parallel(state_dict: StateDict) -> StateDict:
    # Checkpoints saved from nn.DataParallel / DistributedDataParallel prefix every key with "module.".
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return _with_metadata({k[len("module.") :]: v for k, v in state_dict.items()}, state_dict)
    return state_dict


def _with_metadata(new: dict[str, torch.Tensor], old: StateDict) -> StateDict:
    # load_state_dict reads per-module versions from `_metadata`; keep it on rebuilt dicts.
    out = OrderedDict(new)
    metadata = getattr(old, "_metadata", None)
    if metadata is not None:
        out._metadata = metadata  # type: ignore[attr-defined]
    return out


def _assign(model: nn.Module, state_dict: StateDict, name: str, arch: str) -> None:
    # One walk of the module tree serves every step below (each walk of shufflenet_v2_x0_5's 205 modules
    # costs about 0.4 ms, and there were three of its 15 ms).
    modules = dict(model.named_modules(remove_duplicate=False))
    plain = _plain_loading(modules.values())
    expected = _saved_tensors(modules) if plain else model.state_dict()
    # Files saved before torch 0.4.1 (torchvision's V1 ImageNet weights) have no BatchNorm step counters.
    counters = {
        k: torch.tensor(0) for k in expected if k.endswith(".num_batches_tracked") and k not in state_dict
    }
    what = f"weights {name} do not fit {arch}"
    if plain:  # modules that rename legacy keys themselves are checked by load_state_dict below
        _check_fit(state_dict.keys() | counters.keys(), state_dict, expected, what)
    _check_dtypes(state_dict, expected, what)
    # assign=True would hand the file's dtype (say fp16) to the model; keep the model's, as copying does.
    fitted = {
        k: v.to(expected[k].dtype) if k in expected and v.dtype != expected[k].dtype else v
        for k, v in state_dict.items()
    }
    fitted = _with_metadata({**fitted, **counters}, state_dict)
    if plain:
        _assign_tensors(modules, fitted)
    else:
        try:
            model.load_state_dict(fitted, strict=True, assign=True)
        except RuntimeError as e:
            detail = " ".join(str(e).split())
            raise WeightsMismatchError(f"weights {name} do not fit {arch}: {detail[:500]}") from None
        # The model was built without init: a tensor that a module's own loader left unfilled would hold
        # whatever the memory held. Each must now be one of the file's (or a counter made above).
        filled = {v.data_ptr() for v in fitted.values()}
        left = [k for k, t in _saved_tensors(modules).items() if t.numel() and t.data_ptr() not in filled]
        if left:
            raise WeightsMismatchError(f"weights {name} leave {arch} tensors uninitialised: {_few(left)}")


def _check_fit(keys: Any, state_dict: StateDict, expected: StateDict, what: str) -> None:
    problems = []
    if missing := [k for k in expected if k not in keys]:
        problems.append(f"missing {_few(missing)}")
    if unexpected := [k for k in state_dict if k not in expected]:
        problems.append(f"unexpected {_few(unexpected)}")
    if shapes := [
        f"{k} {tuple(v.shape)} (model {tuple(expected[k].shape)})"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]:
        problems.append(f"shape of {_few(shapes)}")
    if problems:
        raise WeightsMismatchError(f"{what}: {'; '.join(problems)}")


def _kind(t: torch.Tensor) -> str:
    if t.dtype == torch.bool:
        return "bool"
    if t.is_complex():
        return "complex"
    return "float" if t.is_floating_point() else "integer"


def _check_dtypes(state_dict: StateDict, expected: StateDict, what: str) -> None:
    # A float parameter filled from an integer, bool or complex tensor would either fail deep in torch
    # ("only floating point tensors can require gradients") or silently truncate; only the precision may
    # differ (fp16 or bf16 files load into fp32 models).
    wrong = [
        f"{k} ({str(v.dtype).removeprefix('torch.')}, model {str(expected[k].dtype).removeprefix('torch.')})"
        for k, v in state_dict.items()
        if k in expected and _kind(v) != _kind(expected[k])
    ]
    if wrong:
        raise WeightsMismatchError(f"{what}: dtype of {_few(wrong)}")


def tensor_shape(state_dict: StateDict, key: str, rank: int) -> tuple[int, ...] | None:
    """The shape of `state_dict[key]` for size inference, or None when the key is absent (the fit check
    then names it). A tensor of another rank, with a zero-sized dimension or not floating point is a
    WeightsMismatchError naming the key: sizes read from it would build a model that cannot be right."""
    t = state_dict.get(key)
    if t is None:
        return None
    shape = tuple(t.shape)
    if len(shape) != rank:
        raise WeightsMismatchError(f"{key} has shape {shape}, expected {rank} dimensions")
    if 0 in shape:
        raise WeightsMismatchError(f"{key} has shape {shape}, with a dimension of size 0")
    if not t.is_floating_point():
        raise WeightsMismatchError(f"{key} holds {str(t.dtype).removeprefix('torch.')}, not floating point")
    return shape


# BatchNorm's own loader only adds the step counters handled above; InstanceNorm's only objects to running
# stats, which the pre-check reports as unexpected keys.
_PLAIN_LOADERS = (
    nn.Module._load_from_state_dict,
    _NormBase._load_from_state_dict,
    _InstanceNorm._load_from_state_dict,
)


def _plain_loading(modules: Iterable[nn.Module]) -> bool:
    """True when no module customises state-dict loading beyond BatchNorm's counter upgrade (done above), nor
    what its state dict holds (hooks, `_save_to_state_dict`, extra state)."""
    return all(
        not m._load_state_dict_pre_hooks
        and not m._load_state_dict_post_hooks
        and type(m)._load_from_state_dict in _PLAIN_LOADERS
        and not m._state_dict_hooks
        and not m._state_dict_pre_hooks
        and type(m)._save_to_state_dict is nn.Module._save_to_state_dict
        and type(m).get_extra_state is nn.Module.get_extra_state
        for m in modules
    )


def _saved_tensors(modules: dict[str, nn.Module]) -> StateDict:
    """What `state_dict()` holds for plain modules (parameters and persistent buffers), from the walk the
    caller made already."""
    out = {}
    for path, m in modules.items():
        prefix = f"{path}." if path else ""
        for key, p in m._parameters.items():
            if p is not None:
                out[prefix + key] = p
        for key, b in m._buffers.items():
            if b is not None and key not in m._non_persistent_buffers_set:
                out[prefix + key] = b
    return out


def _assign_tensors(modules: dict[str, nn.Module], state_dict: StateDict) -> None:
    # What load_state_dict(assign=True) does for plain modules, without its per-module walk (about
    # 15 ms of a ResNet-101's build); names and shapes were checked by the caller.
    # A parameter shared by two layers stays shared. Old and new are both kept in the map: an id is
    # only unique while its object lives, and each replaced meta tensor would otherwise be freed.
    loaded: dict[int, tuple[torch.Tensor, nn.Parameter]] = {}
    for key, value in state_dict.items():
        path, _, attr = key.rpartition(".")
        module = modules[path]
        old = module._parameters.get(attr)
        if old is None:
            module._buffers[attr] = value
            continue
        if id(old) not in loaded:
            new = nn.Parameter(value, requires_grad=old.requires_grad)
            loaded[id(old)] = (old, new)
            loaded[id(new)] = (new, new)  # the same module met again under another name
        module._parameters[attr] = loaded[id(old)][1]


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def pretrained_weights(arch: str) -> str:
    """What `pretrained=True` means for `arch`: torchvision's legacy weights (`IMAGENET1K_V1`, e.g. the book's
    resnet101-63fe2227.pth) where the manifest has them, else the default weights."""
    legacy = f"{arch}.imagenet1k_v1"
    return legacy if legacy in manifest.load().weights else "DEFAULT"


def torchvision_model(name: str) -> Callable[..., nn.Module]:
    """torchvision's builder `name` (from its registry), imported on first build: listing the zoo does not
    load torchvision (1.4 s on top of torch's 1.4 s here). Safe on the meta device."""

    def make(**kwargs: Any) -> nn.Module:
        from torchvision import models

        with _regnet_block_params_on_cpu() if name.startswith("regnet_") else contextlib.nullcontext():
            return models.get_model_builder(name)(**kwargs)

    make.__name__ = name
    return make


@contextlib.contextmanager
def _regnet_block_params_on_cpu() -> Iterator[None]:
    # RegNet computes its block widths from tensors with .tolist(), which the meta device cannot answer:
    # those few scalars are computed on the CPU, everything else stays on meta. Builds on meta hold the
    # builder's init lock, so this patch is never seen half-restored by another build.
    from torchvision.models import regnet

    saved = regnet.BlockParams.__dict__["from_init_params"]
    bound = regnet.BlockParams.from_init_params

    def on_cpu(*args: Any, **kwargs: Any) -> Any:
        with torch.device("cpu"):
            return bound(*args, **kwargs)

    regnet.BlockParams.from_init_params = on_cpu  # type: ignore[method-assign]
    try:
        yield
    finally:
        regnet.BlockParams.from_init_params = saved  # type: ignore[method-assign]


def replace_head(model: nn.Module, head: str | tuple[str, ...], num_classes: int) -> None:
    """Swap the Linear (or SqueezeNet's 1x1 Conv2d) layer at dotted path `head` for a fresh `num_classes`-way
    one, if the size differs. A tuple names several heads (Inception's and GoogLeNet's auxiliary ones); those
    the model does not have (auxiliary heads dropped after loading) are skipped."""
    for path in (head,) if isinstance(head, str) else head:
        parent_path, _, attr = path.rpartition(".")
        try:
            parent = model.get_submodule(parent_path) if parent_path else model
        except AttributeError:
            continue  # an auxiliary head's parent dropped after loading
        old = parent[int(attr)] if attr.isdigit() else getattr(parent, attr, None)
        if old is None:
            continue
        new = _fresh_head(old, num_classes)
        if new is None:
            continue
        if attr.isdigit():
            parent[int(attr)] = new
        else:
            setattr(parent, attr, new)


def _fresh_head(old: nn.Module, num_classes: int) -> nn.Module | None:
    if isinstance(old, nn.Linear):
        if old.out_features == num_classes:
            return None
        return nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    if isinstance(old, nn.Conv2d):  # SqueezeNet classifies with a 1x1 convolution
        if old.out_channels == num_classes:
            return None
        return nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, bias=old.bias is not None)
    raise TypeError(f"cannot replace a {type(old).__name__} head")


def head_classes(head: str) -> Callable[[StateDict], dict[str, Any]]:
    """An `infer_kwargs` for classifiers: `num_classes` from the head's weight (a Linear's, or SqueezeNet's
    1x1 convolution's)."""

    def infer(state_dict: StateDict) -> dict[str, Any]:
        t = state_dict.get(f"{head}.weight")
        rank = 4 if t is not None and t.dim() == 4 else 2
        shape = tensor_shape(state_dict, f"{head}.weight", rank)
        return {"num_classes": shape[0]} if shape is not None else {}

    return infer
