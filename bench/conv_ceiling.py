"""How close zoo's fp32 CPU classifier runs to this machine's arithmetic ceiling (resnet50).

The fp32 target of issue 16 (2x the book's loop on bench/classify.py) needs the model and the image
preparation together to cost at most half of the book's loop. This bench shows what the model alone costs and
why it cannot cost much less at fp32: it times zoo's fused resnet50 (BatchNorms folded, channels-last, oneDNN's
fused convolutions packed for pieces of `CPU_CHUNK` images, as `Classifier` builds it) and every convolution in
it, and prints the rate in GFLOP/s (2 x multiply-adds) of each kind of convolution next to what the best
general matrix product on these cores reaches (`torch.mm`, MKL's sgemm, on square matrices), and next to
`torch.addmm` (MKL) doing the 1x1 convolutions' own matrix products.

    python bench/conv_ceiling.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision import models as tvm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo.devices import describe_cpu_flags, fold_batchnorm  # noqa: E402
from zoo.tasks import fused_conv  # noqa: E402
from zoo.tasks.classification import CPU_CHUNK  # noqa: E402


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    """The median time of `fn` over `rounds` calls, after two untimed ones (oneDNN builds its kernels)."""
    fn()
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_flops(module: fused_conv.FusedConv2d, output: torch.Tensor) -> int:
    """2 x the multiply-adds of one call: each output element takes (in channels / groups) x kh x kw."""
    weight = module.weight.to_dense() if module.weight.is_mkldnn else module.weight
    return 2 * output.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]


def profile_model(rounds: int) -> None:
    model = fold_batchnorm(tvm.resnet50().eval()).to(memory_format=torch.channels_last)
    fused = fused_conv.fuse_convolutions(model, [CPU_CHUNK, 3, 224, 224])
    if fused is None:
        sys.exit("oneDNN's fused convolutions are not available in this torch")
    x = torch.randn(CPU_CHUNK, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        total = median_seconds(
            lambda: fused(x), rounds
        )  # before the hooks below, which cost time of their own

    spent: dict[str, float] = defaultdict(float)
    flops: dict[str, int] = {}
    kinds: dict[str, str] = {}
    started: dict[str, float] = {}
    for name, module in fused.named_modules():
        if not isinstance(module, fused_conv.FusedConv2d):
            continue
        weight = module.weight.to_dense() if module.weight.is_mkldnn else module.weight
        kinds[name] = f"{weight.shape[2]}x{weight.shape[3]} stride {module.stride[0]}"

        def before(_module, _args, name=name):
            started[name] = time.perf_counter()

        def after(module, _args, output, name=name):
            spent[name] += time.perf_counter() - started[name]
            flops.setdefault(name, conv_flops(module, output))

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    with torch.inference_mode():
        fused(x)
        spent.clear()
        for _ in range(rounds):
            fused(x)
    images = CPU_CHUNK
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for name, seconds in spent.items():
        by_kind[kinds[name]][0] += seconds / rounds
        by_kind[kinds[name]][1] += flops[name]
    conv_seconds = sum(seconds for seconds, _ in by_kind.values())
    conv_flop = sum(flop for _, flop in by_kind.values())
    print(
        f"zoo's fused resnet50, pieces of {images} images: {total / images * 1e3:.1f} ms an image "
        f"({conv_flop / images / 1e9:.2f} GFLOP an image, {conv_flop / total / 1e9:.0f} GFLOP/s); its convolutions, "
        "timed one by one: "
        f"{conv_seconds / images * 1e3:.1f} ms"
    )
    print(f"  {'convolutions':<16} {'ms/img':>7} {'GFLOP/s':>8}")
    for kind, (seconds, flop) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
        print(f"  {kind:<16} {seconds / images * 1e3:>7.2f} {flop / seconds / 1e9:>8.0f}")
    print(f"  {'all':<16} {conv_seconds / images * 1e3:>7.2f} {conv_flop / conv_seconds / 1e9:>8.0f}")


def profile_gemms(rounds: int) -> None:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = median_seconds(lambda: torch.mm(a, b), rounds)
    print(f"MKL sgemm (torch.mm), 2048x2048x2048: {2 * 2048**3 / seconds / 1e9:.0f} GFLOP/s")
    # resnet50's 1x1 convolutions as matrix products (rows: 4 images x H x W; in -> out channels), with the
    # same products done by oneDNN's packed 1x1 convolution.
    print(f"  {'1x1 as GEMM (M x K -> N)':<26} {'addmm':>6} {'oneDNN':>7}  GFLOP/s")
    args = ([0, 0], [1, 1], [1, 1], 1)  # padding, stride, dilation, groups
    for side, k, n in [(56, 64, 256), (56, 256, 64), (28, 128, 512), (14, 1024, 256), (7, 2048, 512)]:
        m = CPU_CHUNK * side * side
        rows, weight, bias = torch.randn(m, k), torch.randn(k, n), torch.randn(n)
        mkl = median_seconds(
            lambda rows=rows, weight=weight, bias=bias: torch.addmm(bias, rows, weight), rounds
        )
        x = rows.reshape(CPU_CHUNK, side, side, k).permute(0, 3, 1, 2)  # channels-last NCHW view
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            weight.t().contiguous().reshape(n, k, 1, 1), *args, [CPU_CHUNK, k, side, side]
        )
        with torch.inference_mode():
            onednn = median_seconds(
                lambda x=x, packed=packed, bias=bias: torch.ops.mkldnn._convolution_pointwise(
                    x, packed, bias, *args, "none", [], ""
                ),
                rounds,
            )
        flop = 2 * m * k * n
        print(f"  {f'{m} x {k} -> {n}':<26} {flop / mkl / 1e9:>6.0f} {flop / onednn / 1e9:>7.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CPU flags: {describe_cpu_flags()}")
    profile_model(args.rounds)
    profile_gemms(args.rounds)


if __name__ == "__main__":
    main()
