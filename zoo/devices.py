"""Device choice shared by builders and tasks."""

from __future__ import annotations

import contextlib
import warnings

import torch

from .errors import InvalidArgumentError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`None` or "auto" means CUDA when available, else CPU; asking for CUDA without one is an error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise InvalidArgumentError(f"invalid device {device!r}: {e}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgumentError(
                f"device {device!r} was asked for, but CUDA is not available on this machine"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidArgumentError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) found"
            )
    return dev


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """The autocast context for `precision` ("fp32", "bf16", "fp16") on `device`; fp32 needs none."""
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[precision])


def warn_if_emulated(device: torch.device, precision: str) -> None:
    """Warn when a reduced precision has no hardware support on this CPU (it then runs slower than fp32)."""
    if device.type != "cpu" or precision == "fp32":
        return
    check = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[precision]
    try:
        native = bool(getattr(torch.ops.mkldnn, check)())
    except (AttributeError, RuntimeError):
        return
    if not native:
        warnings.warn(
            f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native {precision} support "
            f"(AMX or AVX512-{precision.upper()}): {precision} is emulated and slower than fp32 here",
            stacklevel=3,
        )


def for_inference(model: torch.nn.Module, precision: str = "fp32") -> torch.nn.Module:
    """`model` in eval mode; channels-last memory when running in reduced precision (faster convolutions)."""
    model.eval()
    if precision != "fp32":
        model.to(memory_format=torch.channels_last)
    return model


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of `model` with each BatchNorm folded into the convolution before it.

    Saves a memory-bound pass per BatchNorm (resnet50 on 2 CPU cores: about 20 % of a forward). Models that
    torch.fx cannot trace are returned as they are.
    """
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model.eval())
    except Exception:  # tracing fails on data-dependent control flow: keep the model unfused
        return model
