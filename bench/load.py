"""Pretrained construction: zoo.get_model against torchvision's builder, same weight file, side by side.

For each model a random state dict is written once under the torchvision file name into a temporary
TORCH_HOME, so torchvision loads it from its cache (no download), and a temporary manifest whose default
entries carry that file's sha256 and size makes zoo find the same file, as it would a real download
(`zoo.get_model(name)` with its default weights): in torch's cache, or (the "zoo cache" rows) as a hard
link in the zoo's own cache. zoo verifies the file every time; its in-process memory of verified files
is cleared before each round, so each round pays what a new process pays for a warm cache (a stat and the
stored record). Each round times both builders back to back; the median of the rounds is reported. The
one-time cost of the first verification (hashing the whole file) is printed separately.

    python bench/load.py [--rounds 7] [--models resnet101 alexnet googlenet]
    python bench/load.py --models all [--rounds 3]   # every torchvision classifier, cached build only

With `--models all` each of the 80 classifiers is measured in the "zoo cache" case only (zoo's cached
pretrained build against torchvision's builder on the same file), one file at a time (they would need 22 GB
at once), and the median and the worst ratio are printed after the per-model lines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torchvision import models as tvm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zoo  # noqa: E402
from zoo.devices import describe_cpu_flags  # noqa: E402
from zoo.store import integrity  # noqa: E402
from zoo.weights import copies, manifest  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_checkpoint(name: str) -> Path:
    """A random state dict under torchvision's file name in torch's hub cache, shaped as the default weights
    are (the arguments their builder uses: ViT's image size, the Inception heads, ...)."""
    weights_enum = tvm.get_model_weights(name).DEFAULT
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    path = checkpoints / weights_enum.url.rsplit("/", 1)[1]
    if not path.exists():
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in zoo.get_weights(name).kwargs.items()}
        torch.save(tvm.get_model(name, weights=None, **kwargs).state_dict(), path)
    return path


def register(name: str, data: dict) -> Path:
    """Write `name`'s checkpoint and point the temporary manifest's default entry at its sha256 and size."""
    path = write_checkpoint(name)
    entry = data["weights"][data["defaults"][name]]
    entry["sha256"] = integrity.sha256_file(path)
    entry["size"] = path.stat().st_size
    manifest.write_raw(data, os.environ["ZOO_MANIFEST"])
    os.sync()  # so the kernel's write-back of the fresh file does not land inside a timed round
    return path


def bench(name: str, rounds: int, forward: bool, zoo_cache: bool) -> tuple[float, float]:
    weights_enum = tvm.get_model_weights(name).DEFAULT
    source = write_checkpoint(name)
    link = Path(os.environ["ZOO_HOME"]) / "weights" / source.name
    link.unlink(missing_ok=True)
    if zoo_cache:
        link.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, link)
    x = torch.rand(1, 3, 224, 224)

    def run_torchvision():
        model = getattr(tvm, name)(weights=weights_enum)
        if forward:
            with torch.inference_mode():
                model.eval()(x)

    def run_zoo():
        integrity._memo.clear()  # a new process's view: only the stored verification record
        model = zoo.get_model(name, device="cpu")
        if forward:
            with torch.inference_mode():
                model.eval()(x)

    run_torchvision(), run_zoo()  # warm the page cache and lazy imports for both
    copies.wait()  # the first load from the zoo cache wrote the safetensors copy: the rounds map it
    tv, zz = [], []
    for _ in range(rounds):
        tv.append(timed(run_torchvision))
        zz.append(timed(run_zoo))
    return statistics.median(tv), statistics.median(zz)


def first_load(name: str, rounds: int) -> tuple[float, float, float]:
    """The load that finds no safetensors copy yet (what the first load after a download is; the file's
    digest is remembered, as a download leaves it): median seconds with copies off (zoo before copies), with
    copies on (the copy then written on a thread of its own), and of that background write."""
    link = Path(os.environ["ZOO_HOME"]) / "weights" / write_checkpoint(name).name
    off, on, background = [], [], []
    for _ in range(rounds):
        copies.remove(link)
        integrity._memo.clear()
        os.environ[copies.SETTING] = "0"
        off.append(timed(lambda: zoo.get_model(name, device="cpu")))
        del os.environ[copies.SETTING]
        integrity._memo.clear()
        on.append(timed(lambda: zoo.get_model(name, device="cpu")))
        background.append(timed(copies.wait))
    return statistics.median(off), statistics.median(on), statistics.median(background)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--models", nargs="+", default=["resnet101", "alexnet", "googlenet"])
    args = parser.parse_args()
    catalogue = args.models == ["all"]
    names = tvm.list_models(module=tvm) if catalogue else args.models
    cases = ((False, True),) if catalogue else ((False, False), (True, False), (False, True))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TORCH_HOME"] = tmp
        os.environ["ZOO_MANIFEST"] = str(Path(tmp) / "manifest.json")
        os.environ["ZOO_HOME"] = str(Path(tmp) / "zoo_home")
        data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
        manifest.write_raw(data, os.environ["ZOO_MANIFEST"])
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.rounds} rounds")
        print(f"CPU: {describe_cpu_flags()}, {os.cpu_count()} cores")
        print(f"{'model':<20} {'what':<18} {'torchvision':>12} {'zoo':>10} {'ratio':>7}")
        ratios, first = {}, {}
        for name in names:
            path = register(name, data)
            for forward, zoo_cache in cases:
                tv, zz = bench(name, args.rounds, forward, zoo_cache)
                what = "build+1 forward" if forward else "build (pretrained)"
                what = "build, zoo cache" if zoo_cache else what
                ratios[name] = tv / zz
                print(
                    f"{name:<20} {what:<18} {tv * 1e3:>10.1f}ms {zz * 1e3:>8.1f}ms {tv / zz:>6.1f}x",
                    flush=True,
                )
            took = timed(lambda path=path: integrity.sha256_file(path))
            first[name] = (took, path.stat().st_size)
            if catalogue:  # one file at a time
                link = Path(os.environ["ZOO_HOME"]) / "weights" / path.name
                copies.remove(link)
                link.unlink(missing_ok=True)
                path.unlink()
                continue
            off, on, background = first_load(name, args.rounds)
            print(
                f"{name:<20} {'first load':<18} {'copies off':>12} {'copies on':>10} {'ratio':>7}\n"
                f"{'':<20} {'(no copy yet)':<18} {off * 1e3:>10.1f}ms {on * 1e3:>8.1f}ms {off / on:>6.2f}x"
                f"   (then {background * 1e3:.0f} ms writing the copy in the background)",
                flush=True,
            )
        if catalogue:
            worst = min(ratios, key=ratios.get)
            print(
                f"{len(ratios)} models, zoo cache: median {statistics.median(ratios.values()):.1f}x, "
                f"worst {ratios[worst]:.1f}x ({worst}), best {max(ratios.values()):.1f}x ({max(ratios, key=ratios.get)}), "
                f"slower than torchvision: {sorted(n for n, r in ratios.items() if r < 1) or 'none'}"
            )
            return
        for name, (took, size) in first.items():
            print(
                f"{name:<10} first verification (once per file): {took * 1e3:.0f} ms for {size / 2**20:.0f} MiB"
            )


if __name__ == "__main__":
    main()
