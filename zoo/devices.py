"""Device choice shared by builders and tasks."""

from __future__ import annotations

import contextlib
import platform
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


# The instruction-set flags the benchmarks print and `precision="auto"` reads, as /proc/cpuinfo names them.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_flags() -> dict[str, bool]:
    """Which of CPU_FLAGS this CPU has (AVX2, AVX-512, AVX-512-BF16, AMX-BF16): read from /proc/cpuinfo on
    Linux, elsewhere from torch's own cpuinfo checks (`torch.cpu._is_*_supported`, AMX as AMX tiles)."""
    flags = _proc_cpuinfo_flags()
    if flags:
        return {flag: flag in flags for flag in CPU_FLAGS}
    checks = {
        "avx2": "_is_avx2_supported",
        "avx512f": "_is_avx512_supported",
        "avx512_bf16": "_is_avx512_bf16_supported",
        "amx_bf16": "_is_amx_tile_supported",
    }
    found = {}
    for flag, name in checks.items():
        check = getattr(torch.cpu, name, None)
        try:
            found[flag] = bool(check()) if check is not None else False
        except (AttributeError, RuntimeError):
            found[flag] = False
    return found


def _proc_cpuinfo_flags() -> list[str]:
    """The x86 flags line of /proc/cpuinfo, split; [] where there is none (not Linux, not x86)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []


def describe_cpu_flags(flags: dict[str, bool] | None = None) -> str:
    """`flags` (default: this CPU's) as one line, e.g. "AVX2 yes, AVX-512 yes, AVX-512-BF16 yes, AMX no"."""
    flags = cpu_flags() if flags is None else flags
    names = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX-512-BF16", "amx_bf16": "AMX"}
    return ", ".join(f"{names[k]} {'yes' if flags.get(k) else 'no'}" for k in CPU_FLAGS)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes in bf16 natively: a CPU with AVX512_BF16 or AMX, or a CUDA GPU with bf16
    (Ampere or later; older GPUs and CPUs emulate it, slower than fp32)."""
    if device.type == "cuda":
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except (AssertionError, RuntimeError):
            return False
    if device.type != "cpu":
        return False
    flags = cpu_flags()
    if flags["avx512_bf16"] or flags["amx_bf16"]:
        return True
    if platform.machine().lower() in ("arm64", "aarch64"):
        # No /proc/cpuinfo flags to read on macOS: oneDNN's own check (ARM's BF16 extension) decides.
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(device: torch.device, precision: str = "fp32") -> str:
    """`precision` ("fp32", "bf16", "fp16") checked, or for "auto": "bf16" where `device` has native bf16
    (see native_bf16), else "fp32"."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision not in PRECISIONS:
        raise InvalidArgumentError(
            f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)} or auto"
        )
    return precision


def warn_if_emulated(device: torch.device, precision: str) -> None:
    """Warn when a reduced precision has no hardware support on this CPU (it then runs slower than fp32)."""
    if device.type != "cpu" or precision == "fp32":
        return
    if precision == "bf16":
        native = native_bf16(device)
    else:
        try:
            native = bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
        except (AttributeError, RuntimeError):
            return
    if not native:
        warnings.warn(
            f"this CPU ({describe_cpu_flags()}) has no native {precision} support "
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
