"""Classification throughput: the book's per-image loop against zoo's Classifier (what `zoo classify` runs).

A folder of photo-like JPEGs of mixed camera and web sizes (up to 4000x3000) is written once: `--distinct`
photos (64 by default), the other files hard links to them, so 1,000 images take seconds to set up; decoding
costs the same either way (every file is read from the page cache). A random resnet50 state dict stands in for
the real weights (no download here; the cost is the same). Both sides use that file.

The book's loop: PIL open, Resize(256), CenterCrop(224), ToTensor, Normalize, the model on a batch of one
(under no_grad). zoo: draft-mode JPEG decoding, the weights' preset, batches of 32 prepared on worker threads
while the model runs, inference_mode, BatchNorms folded, channels-last; at fp32 the convolutions run as
oneDNN's fused kernels with weights packed once (zoo/tasks/fused_conv.py), and the row "zoo fp32 eager" is the
same Classifier with `fuse=False` (the model in eager PyTorch). `--compile` adds torch.compile (inductor,
freezing) on that eager model, its compile counted in the first pass.

Each side makes `--rounds` passes over the whole folder, in turn, after a warm-up on 2 images (and up to
`--retries` more until each side has had a quiet pass, one during which other processes used under 5 % of the
cores, measured from /proc/stat); the best quiet pass of each is kept and every ratio is against the book's
loop in the same run. Printed with the figures: the machine, its CPU flags, the peak resident memory (RSS) of
each side's pass, and how far each zoo side's probabilities are from the book's and from zoo's eager fp32
(top-1 agreement, largest difference in percentage points over each image's top 5; zoo's sides ask for the
top 5, as `zoo classify` does).

    python bench/classify.py [--images 64] [--distinct 64] [--precisions fp32 bf16 auto] [--rounds 1]
                             [--retries 0] [--compile]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import models as tvm
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo.devices import describe_cpu_flags, resolve_device  # noqa: E402
from zoo.tasks import Classifier  # noqa: E402

SIZES = [
    (4000, 3000),
    (3024, 4032),
    (1920, 1080),
    (1280, 960),
    (2048, 1536),
    (800, 600),
    (640, 480),
    (1600, 1200),
]


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like image: smooth colour fields, edges and fine texture (JPEG-compresses like a photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    texture = rng.normal(0, 12, (height // 4, width // 4, 1))
    texture = np.asarray(Image.fromarray(texture[..., 0].astype(np.float32)).resize((width, height)))[
        ..., None
    ]
    return Image.fromarray(np.clip(np.asarray(base, np.float32) + texture, 0, 255).astype(np.uint8))


def make_folder(folder: Path, n: int, distinct: int | None = None) -> list[Path]:
    """`n` JPEGs in `folder`: `distinct` photos written (all `n` by default), the others hard links to them
    (copies where links are refused), cycling through SIZES."""
    distinct = n if distinct is None else max(1, min(distinct, n))
    paths = []
    for i in range(n):
        path = folder / f"img{i:04d}.jpg"
        if i < distinct:
            photo(*SIZES[i % len(SIZES)], seed=i).save(path, quality=90)
        else:
            source = paths[i % distinct]
            try:
                os.link(source, path)
            except OSError:
                shutil.copyfile(source, path)
        paths.append(path)
    return paths


def book_loop(model: torch.nn.Module, paths: list[Path], device: torch.device | str = "cpu") -> torch.Tensor:
    """The book's loop, the model on `device`: one image at a time, preprocessed on the CPU, run at fp32 on a
    batch of one; the probabilities (percent) of each image read back to the CPU (as the book prints them),
    one row each."""
    preprocess = T.Compose(
        [
            T.Resize(256),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )
    model.eval()
    out = []
    with torch.no_grad():
        for path in paths:
            img = Image.open(path)
            batch_t = torch.unsqueeze(preprocess(img), 0).to(device)
            out.append((torch.nn.functional.softmax(model(batch_t), dim=1)[0] * 100).cpu())
    return torch.stack(out)


# Class names that are unique (ImageNet's have duplicates: two "crane"s, two "maillot"s), so that a label
# gives back its class index.
CLASSES = [f"class {i}" for i in range(1000)]
TOPK = 5  # what `zoo classify` asks for by default, and what the checks compare

Top = tuple[torch.Tensor, torch.Tensor]  # each image's TOPK class indices and percentages, best first


def zoo_run(classifier: Classifier, paths: list[Path]) -> Top:
    """zoo's run as `zoo classify` makes it (the top 5 of each image); kept as two small tensors, so that the
    bench's own memory does not grow with the images."""
    index = {name: i for i, name in enumerate(classifier.categories)}
    assert len(index) == len(classifier.categories), "class names must be unique"
    indices = torch.empty(len(paths), TOPK, dtype=torch.long)
    values = torch.empty(len(paths), TOPK)
    for row, (_, prediction) in enumerate(classifier.run(paths, topk=TOPK, batch_size=32)):
        if isinstance(prediction, Exception):
            raise prediction
        indices[row] = torch.tensor([index[label] for label, _ in prediction])
        values[row] = torch.tensor([percent for _, percent in prediction])
    return indices, values


def reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mib(field: str = "VmHWM") -> float | None:
    """The process's peak resident memory since the last reset (VmHWM) or its current one (VmRSS), in MiB;
    None where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def busy_seconds() -> tuple[float, float] | None:
    """CPU seconds used so far by the whole machine (all cores, from /proc/stat) and by this process; None
    where /proc/stat cannot be read. Their difference over a pass is what other processes took."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    times = os.times()
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK"), times.user + times.system


def machine() -> str:
    """One line: CPU model, cores, memory, torch's threads and version, the CPU flags."""
    model = platform.processor() or platform.machine()
    memory = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(
            (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), model
        )
        kib = next(
            int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in ln
        )
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return (
        f"{model}, {os.cpu_count()} cores{memory}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"CPU flags: {describe_cpu_flags()}"
    )


def compiled(weights: Path, device: str) -> Classifier:
    """zoo's eager fp32 Classifier with its model under torch.compile (inductor, freezing); compiles on the
    first call."""
    import torch._inductor.config

    torch._inductor.config.freezing = True
    classifier = Classifier("resnet50", weights, device=device, fuse=False, categories=CLASSES)
    classifier.model = torch.compile(classifier.model, dynamic=False)
    return classifier


# A pass during which other processes used less than this share of the cores counts as quiet: on 2 cores a
# process taking one core slows torch's 2 threads several times over (the book's loop 4-10x, measured).
QUIET = 0.05


def _quiet(share: float | None) -> bool:
    return share is not None and share < QUIET


def _better(took: float, share: float | None, best: float, best_share: float | None) -> bool:
    """Whether a pass (its time, others' share of the cores) beats the best so far: quiet beats not."""
    if _quiet(share) != _quiet(best_share):
        return _quiet(share)
    return took < best


def compare(what: str, top: Top, reference: torch.Tensor | Top) -> str:
    """How far `top` is from `reference` (the book's full probabilities, or another zoo side's top 5): top-1
    agreement, and the largest difference over each image's top classes, in percentage points."""
    indices, values = top
    if isinstance(reference, torch.Tensor):
        same = int((indices[:, 0] == reference.argmax(1)).sum())
        diff = float((values - reference.gather(1, indices)).abs().max())
        return f"  {what}: top-1 the same for {same}/{len(values)} images, max |diff| {diff:.4f} points"
    ref_indices, ref_values = reference
    same = int((indices[:, 0] == ref_indices[:, 0]).sum())
    same5 = int((indices == ref_indices).all(1).sum())
    diff = 0.0
    for i in range(len(values)):  # over the classes both top 5s hold
        theirs = dict(zip(ref_indices[i].tolist(), ref_values[i].tolist(), strict=True))
        for k, v in zip(indices[i].tolist(), values[i].tolist(), strict=True):
            if k in theirs:
                diff = max(diff, abs(v - theirs[k]))
    return (
        f"  {what}: top-1 the same for {same}/{len(values)} images (top 5 in the same order: {same5}), "
        f"max |diff| {diff:.4f} points"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--distinct", type=int, default=64, help="photos written; the rest are hard links")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=1, help="passes per side, in turn; the best is kept")
    parser.add_argument(
        "--retries", type=int, default=0, help="more passes, at most, until every side has had a quiet one"
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor, freezing)")
    args = parser.parse_args()
    if min(args.images, args.distinct, args.rounds) < 1 or args.retries < 0:
        parser.error("--images, --distinct and --rounds must be at least 1, --retries at least 0")
    device = str(resolve_device(args.device))
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        paths = make_folder(tmp_path, args.images, args.distinct)
        print(
            f"{len(paths)} JPEGs ({min(args.distinct, len(paths))} distinct photos, the rest hard links) "
            f"written in {time.perf_counter() - started:.0f} s; sizes {sorted(set(SIZES))}"
        )
        weights = tmp_path / "resnet50.pth"
        torch.manual_seed(0)
        torch.save(tvm.resnet50().state_dict(), weights)
        anchor = tvm.resnet50()
        anchor.load_state_dict(torch.load(weights, weights_only=True))

        sides: dict[str, tuple[Callable[[list[Path]], torch.Tensor | Top], float]] = {}
        sides["book loop (fp32, batch of 1)"] = (lambda ps: book_loop(anchor, ps), 0.0)
        for precision in args.precisions:
            started = time.perf_counter()
            classifier = Classifier(
                "resnet50", weights, device=device, precision=precision, categories=CLASSES
            )
            built = time.perf_counter() - started
            label = f"zoo {precision}" + (f" -> {classifier.precision}" if precision == "auto" else "")
            label += " (fused oneDNN)" if classifier.fused else ""
            sides[label] = (lambda ps, c=classifier: zoo_run(c, ps), built)
            if classifier.precision == "fp32" and classifier.fused:
                started = time.perf_counter()
                eager = Classifier("resnet50", weights, device=device, fuse=False, categories=CLASSES)
                built = time.perf_counter() - started
                sides["zoo fp32 eager (fuse=False)"] = (lambda ps, c=eager: zoo_run(c, ps), built)
        if args.compile:
            started = time.perf_counter()
            classifier = compiled(weights, device)
            sides["zoo fp32 torch.compile"] = (
                lambda ps, c=classifier: zoo_run(c, ps),
                time.perf_counter() - started,
            )

        for name, (run, _) in sides.items():
            if "compile" not in name:  # its first pass counts the compile
                run(paths[:2])
        best: dict[str, float] = {}
        first: dict[str, float] = {}
        rss: dict[str, float | None] = {}
        held: dict[str, float | None] = {}
        others: dict[str, float | None] = {}
        probs: dict[str, torch.Tensor | Top] = {}
        passes = 0
        while True:
            for name, (run, _) in sides.items():
                reset_peak_rss()
                before = rss_mib("VmRSS")
                busy_before = busy_seconds()
                started = time.perf_counter()
                probs[name] = run(paths)
                took = time.perf_counter() - started
                busy_after = busy_seconds()
                share = None
                if busy_before and busy_after:  # the share of the cores other processes used meanwhile
                    other = (busy_after[0] - busy_before[0]) - (busy_after[1] - busy_before[1])
                    share = max(0.0, other / (took * (os.cpu_count() or 1)))
                first.setdefault(name, took)
                if name not in best or _better(took, share, best[name], others[name]):
                    best[name], others[name] = took, share
                peak = rss_mib()
                rss[name] = None if peak is None else max(rss.get(name) or 0.0, peak)
                if peak is not None and before is not None:
                    held[name] = max(held.get(name) or 0.0, peak - before)
            passes += 1
            all_quiet = all(_quiet(v) for v in others.values())
            if passes >= args.rounds and (all_quiet or passes >= args.rounds + args.retries):
                break

        book = "book loop (fp32, batch of 1)"
        print(
            f"{len(paths)} images, batch 32, {passes} pass(es) per side in turn, the best quiet one kept "
            f"(others under {QUIET:.0%}; * where none was); device {device}"
        )
        print("peak RSS: the whole process (every side's model is loaded); held: how far a pass raised it;")
        print("others: the share of the machine's cores other processes used during that pass (0% = quiet)")
        print(
            f"{'what':<34} {'img/s':>7} {'ratio':>7} {'ms/img':>7} {'peak RSS':>9} {'held':>8} {'build':>7} "
            f"{'others':>6}"
        )
        for name, took in best.items():
            peak = f"{rss[name]:.0f} MiB" if rss[name] is not None else "-"
            grew = f"{held[name]:.0f} MiB" if held.get(name) is not None else "-"
            share = others.get(name)
            busy = "-" if share is None else f"{100 * share:.0f}%" + ("" if _quiet(share) else "*")
            print(
                f"{name:<34} {len(paths) / took:>7.2f} {best[book] / took:>6.2f}x {1000 * took / len(paths):>7.1f} "
                f"{peak:>9} {grew:>8} {sides[name][1]:>6.2f}s {busy:>6}"
            )
        if args.compile:
            name = "zoo fp32 torch.compile"
            print(
                f"  torch.compile: first pass {first[name]:.1f} s with the compile "
                f"({len(paths) / first[name]:.2f} img/s, {best[book] / first[name]:.2f}x the book)"
                + (f"; compile alone about {first[name] - best[name]:.1f} s" if args.rounds > 1 else "")
            )
        print(f"checks (of the last pass, over each image's top {TOPK}; CPU flags: {describe_cpu_flags()}):")
        eager = next((n for n in probs if "eager" in n), None)
        for name, p in probs.items():
            if name == book:
                continue
            line = compare(f"{name} vs book", p, probs[book])
            if eager is not None and name != eager:
                line += "\n" + compare(f"{name} vs zoo fp32 eager", p, probs[eager])
            print(line)
        print(
            "  (zoo against the book: zoo's preset is that of resnet50's default weights, which the local file"
        )
        print("   inherits: resize 232, not the book's 256; draft-mode JPEG decoding; folded BatchNorms. zoo")
        print("   sides against one another: the same inputs, so only the model's arithmetic differs)")


if __name__ == "__main__":
    main()
