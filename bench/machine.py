"""What machine a benchmark ran on, printed with every figure: the CPU's model, cores and vector flags."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The flags that decide which kernels torch's CPU backends pick (oneDNN's AVX-512 and bf16 paths, AMX tiles).
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "sha_ni")


def cpu_flags() -> set[str]:
    """The CPU's flags from /proc/cpuinfo (empty where there is none: macOS, Windows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model() -> str:
    """The CPU's model name, else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """One line: model, cores, and which of FLAGS the CPU has (`-` before those it lacks)."""
    have = cpu_flags()
    marks = " ".join(flag if flag in have else f"-{flag}" for flag in FLAGS)
    return f"{cpu_model()}, {os.cpu_count()} cores; {marks}"


if __name__ == "__main__":
    print(describe())
