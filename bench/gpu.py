"""One GPU: resnet50's time to first output and classification throughput, zoo against the anchors.

zoo against torchvision's builder and the book's loop, side by side in one run, with peak GPU memory.

Stages, in this order (each prints its rows as soon as they are measured):

1. Set-up: photo-like JPEGs of camera and web sizes (bench/classify.py's) are written to a temporary folder,
   a few distinct files repeated in the lists of paths (each use decodes the file again); a random resnet50
   state dict is written under torchvision's file name into a temporary TORCH_HOME, hard-linked into a
   temporary ZOO_HOME, and a temporary manifest carries its sha256 (bench/load.py's set-up), so both sides
   find the same file as they would a real download. The JPEGs are also decoded once (zoo's draft-mode
   decoding, the weights' resize and crop) into a uint8 tensor cache, pinned on a GPU.
2. Time to first output, warm cache: `zoo.get_model("resnet50", device=...)` and one forward pass at batch 1,
   against `torchvision.models.resnet50(weights=DEFAULT).to(device)` and the same forward, synchronised
   after the forward (zoo's tensors go from the memory-mapped file through pinned memory, non-blocking); on
   CUDA also zoo's CPU build followed by a plain `.to(device)`, to show what that pinned copy changes. Median
   of the rounds after one warm-up of each (the warm-up pays CUDA's and cuDNN's initialisation and zoo's first hash of the file).
3. The book's loop on the device: per image, PIL open, Resize(256), CenterCrop(224), ToTensor, Normalize,
   `.to(device)`, the model on a batch of one at fp32 (under no_grad), its top label read back.
4. zoo's classification, for each variant (fp32 eager; bf16 autocast with channels-last memory; bf16 with
   the model under `torch.compile`) and each batch size (64 and 256):
   - "decoded": the model alone on batches of the uint8 cache: the host-to-device copy (pinned,
     non-blocking), conversion and normalisation on the device, the model, softmax and top-5 read back.
   - "files": `Classifier.run(paths, batch_size=B)`, what `zoo classify` runs: JPEGs decoded on zoo's
     prefetch threads while the model runs. On a GPU this is bound by decoding on the CPU's cores.
   The first batch of each size is a warm-up (for the compiled variant, the compilation, timed apart).
5. Peak memory: per row, the peak of GPU memory allocated by PyTorch during that row; for the whole run,
   the peaks allocated and reserved. On a CPU the process's peak resident set size instead.

A summary prints every variant's ratio against eager fp32 (same inputs and batch) and against the book's
loop. The whole run is bounded by `--budget` seconds (default 270, so that the run with Python's start-up
stays under 5 minutes): when it runs out, the stage under way is stopped, the summary of what was measured
is printed, and the exit status is 3.

    python bench/gpu.py [--device cuda] [--budget 270] [--batch-sizes 64 256] [--images 512] [--model resnet50]
    python bench/gpu.py --device cpu --dry-run   # every stage at a tiny scale, in seconds: tests the script

`--dry-run` runs each stage with two small JPEGs, batches of 1 and 2, one round, and `torch.compile` with
dynamo's eager backend (the graph capture without Inductor's code generation); its figures measure nothing.
Without CUDA, a run on `--device cuda` stops at once with one line.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torchvision import models as tvm
from torchvision.transforms import functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zoo  # noqa: E402
from bench.classify import SIZES, book_loop, photo  # noqa: E402
from bench.load import register  # noqa: E402
from zoo.devices import autocast  # noqa: E402
from zoo.store import integrity  # noqa: E402
from zoo.tasks import Classifier  # noqa: E402
from zoo.tasks.images import open_image  # noqa: E402
from zoo.weights import copies, manifest  # noqa: E402

# (label, precision, compiled): the three configurations.
VARIANTS = [
    ("fp32 eager", "fp32", False),
    ("bf16 channels-last", "bf16", False),
    ("bf16 + compile", "bf16", True),
]
# Seconds past the budget after which a stage that did not stop (stuck outside Python) is cut short.
GRACE = 20.0
STOPPED = 3


@dataclass
class Scale:
    """How much each stage does."""

    batch_sizes: list[int]
    images: int  # paths per "files" row (rounded down to a multiple of the batch, at least one batch)
    distinct: int  # distinct JPEG files behind those paths
    sizes: list[tuple[int, int]]
    book_images: int
    rounds: int  # time-to-first-output rounds
    batches: int  # timed batches per "decoded" row
    compile_backend: str


def scale_for(args: argparse.Namespace) -> Scale:
    """The full scale from the arguments, or the dry run's tiny one."""
    if args.dry_run:
        return Scale([1, 2], 2, 2, [(640, 480), (800, 600)], 2, 1, 1, "eager")
    # Two files of each size: enough distinct inputs, and written in seconds even on 2 cores.
    return Scale(
        args.batch_sizes,
        args.images,
        2 * len(SIZES),
        list(SIZES),
        args.book_images,
        args.rounds,
        args.batches,
        "inductor",
    )


@dataclass
class Row:
    """One throughput measurement."""

    inputs: str  # "files" or "decoded"
    variant: str
    batch: int
    img_s: float
    peak_mib: float | None


@dataclass
class Report:
    """Everything measured so far, so that a run stopped by its budget can still summarise it."""

    device: torch.device
    model: str
    dry_run: bool
    stage: str = "start-up"
    book_img_s: float | None = None
    rows: list[Row] = field(default_factory=list)
    compile_s: dict[int, float] = field(default_factory=dict)
    peak_allocated: float = 0.0
    peak_reserved: float = 0.0
    armed: bool = False
    printed: threading.Lock = field(default_factory=threading.Lock)


class OutOfBudget(BaseException):
    """Raised in the main thread when the budget runs out (a BaseException, so no `except Exception` inside
    torch or zoo swallows it)."""


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer read afterwards includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    """Start a new peak-memory window."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def read_peak(report: Report) -> float | None:
    """MiB allocated at most since reset_peak (None on a CPU), folded into the whole run's peaks."""
    if report.device.type != "cuda":
        return None
    allocated = torch.cuda.max_memory_allocated(report.device) / 2**20
    report.peak_allocated = max(report.peak_allocated, allocated)
    report.peak_reserved = max(report.peak_reserved, torch.cuda.max_memory_reserved(report.device) / 2**20)
    return allocated


def mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def write_jpegs(folder: Path, count: int, sizes: list[tuple[int, int]]) -> list[Path]:
    """`count` photo-like JPEGs cycling through `sizes`, written on threads (Pillow encodes without the
    GIL)."""
    jobs = [(folder / f"img{i:03d}.jpg", sizes[i % len(sizes)], i) for i in range(count)]

    def write(job: tuple[Path, tuple[int, int], int]) -> Path:
        path, (width, height), seed = job
        photo(width, height, seed).save(path, quality=90)
        return path

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(write, jobs))


def cycled(paths: list[Path], n: int) -> list[Path]:
    """`n` paths cycling through `paths`."""
    return [paths[i % len(paths)] for i in range(n)]


def decode_once(model: str, paths: list[Path], n: int, device: torch.device) -> torch.Tensor:
    """An (n, 3, crop, crop) uint8 cache of the JPEGs cycled, as the weights' preset resizes and crops them;
    pinned when the device is a GPU, so that each batch's copy is asynchronous."""
    preset = zoo.get_weights(model).transforms()
    decoded = []
    for path in paths:
        image = open_image(path, min_side=preset.resize_size[0])
        image = TF.resize(image, preset.resize_size, interpolation=preset.interpolation, antialias=True)
        decoded.append(TF.pil_to_tensor(TF.center_crop(image, preset.crop_size)))
    cache = torch.stack([decoded[i % len(decoded)] for i in range(n)])
    return cache.pin_memory() if device.type == "cuda" else cache


def first_output(report: Report, rounds: int) -> None:
    """Time to first output from a warm cache: zoo's get_model against torchvision's build + `.to(device)`."""
    device, name = report.device, report.model
    weights_enum = tvm.get_model_weights(name).DEFAULT
    x = torch.rand(1, 3, 224, 224, device=device)

    def forward(model: torch.nn.Module) -> None:
        with torch.inference_mode():
            model.eval()(x).sum().item()  # the first output, read back

    def torchvision_build() -> None:
        forward(tvm.get_model(name, weights=weights_enum).to(device))

    def zoo_build() -> None:
        integrity._memo.clear()  # a new process's view of the warm cache: the stored record only
        forward(zoo.get_model(name, device=device))

    def zoo_plain_copy() -> None:
        integrity._memo.clear()
        # On the CPU, then moved as torchvision's model is: what zoo's pinned, non-blocking copy replaces.
        forward(zoo.get_model(name).to(device))

    cases: list[tuple[str, Callable[[], None]]] = [
        (f"torchvision {name}(weights=DEFAULT).to(device)", torchvision_build),
        (f'zoo.get_model("{name}", device=device)', zoo_build),
    ]
    if device.type == "cuda":
        cases.append((f'zoo.get_model("{name}").to(device), plain copy', zoo_plain_copy))
    print(f"\ntime to first output, warm cache: build + 1 forward at batch 1, median of {rounds} round(s)")
    print(f"  {'what':<54} {'ms':>8} {'ratio':>7} {'peak MiB':>9}")
    times: dict[str, list[float]] = {label: [] for label, _ in cases}
    peaks: dict[str, float | None] = {}
    for round_ in range(1 + rounds):  # the first round is the warm-up
        if round_ == 1:
            copies.wait()  # the warm-up's load wrote zoo's safetensors copy: the timed rounds map it
        for label, build in cases:
            reset_peak(device)
            sync(device)
            start = time.perf_counter()
            build()
            sync(device)
            times[label].append(time.perf_counter() - start)
            peak = read_peak(report)
            peaks[label] = peak if peak is None else max(peak, peaks.get(label) or 0.0)
    anchor = statistics.median(times[cases[0][0]][1:])
    for label, _ in cases:
        took = statistics.median(times[label][1:])
        print(f"  {label:<54} {took * 1e3:>8.1f} {anchor / took:>6.2f}x {mib(peaks[label]):>9}", flush=True)
    if device.type != "cuda":
        label = f'zoo.get_model("{name}").to(device), plain copy'
        print(f"  {label:<54} n/a (needs CUDA)")


def run_book(report: Report, paths: list[Path]) -> None:
    """Time the book's loop on the device over `paths`."""
    device = report.device
    model = tvm.get_model(report.model, weights=tvm.get_model_weights(report.model).DEFAULT).to(device)
    book_loop(model, paths[:2], device)  # warm-up
    reset_peak(device)
    start = time.perf_counter()
    book_loop(model, paths, device)
    report.book_img_s = len(paths) / (time.perf_counter() - start)
    peak = read_peak(report)
    print(f"\nclassification throughput, {report.model}, images per second; ratios against eager fp32")
    print("(same inputs, same batch) and against the book's loop. 'files': Classifier.run on the JPEGs;")
    print("'decoded': the model on batches of the uint8 cache (copy, normalisation, model, top-5 read back)")
    head = f"{'inputs':<8} {'variant':<20} {'batch':>5} {'img/s':>9} {'vs fp32':>8} {'vs book':>8}"
    print(f"  {head} {'peak MiB':>9}")
    book = f"{'files':<8} {'book loop (fp32)':<20} {1:>5} {report.book_img_s:>9.2f} {'':>8} {1.0:>7.2f}x"
    print(f"  {book} {mib(peak):>9}", flush=True)


def classify_decoded(
    classifier: Classifier, batch: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Top-5 class indices of a uint8 batch, computed on the classifier's device as Classifier.predict does
    (same memory format and autocast, so a compiled model is not recompiled), read back to the CPU."""
    device = classifier.device
    with torch.inference_mode():
        x = batch.to(device, non_blocking=True).float().div_(255).sub_(mean).div_(std)
        if classifier.precision != "fp32" or device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, classifier.precision):
            logits = classifier.model(x)
        return (torch.softmax(logits.float(), dim=1) * 100).topk(5, dim=1).indices.cpu()


def add_row(report: Report, row: Row) -> None:
    """Record a throughput row and print it with its ratios."""
    report.rows.append(row)
    vs_fp32, vs_book = (f"{r:>7.2f}x" if r is not None else f"{'n/a':>8}" for r in ratios(report, row))
    print(
        f"  {row.inputs:<8} {row.variant:<20} {row.batch:>5} {row.img_s:>9.2f} {vs_fp32} {vs_book} "
        f"{mib(row.peak_mib):>9}",
        flush=True,
    )


def run_variant(
    report: Report, scale: Scale, variant: tuple[str, str, bool], paths: list[Path], cache: torch.Tensor
) -> None:
    """The "files" and "decoded" rows of one variant at each batch size."""
    label, precision, compiled = variant
    device = report.device
    classifier = Classifier(report.model, device=device, precision=precision)
    if compiled:
        # Static shapes: one graph per batch size, each specialised, rather than a dynamic one for both.
        classifier.model = torch.compile(classifier.model, backend=scale.compile_backend, dynamic=False)
    preset = classifier.transform
    mean = torch.tensor(preset.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(preset.std, device=device).view(1, 3, 1, 1)
    for batch in scale.batch_sizes:
        started = time.perf_counter()
        classify_decoded(classifier, cache[:batch], mean, std)  # warm-up: the compilation, if any
        sync(device)
        if compiled:
            report.compile_s[batch] = time.perf_counter() - started
        reset_peak(device)
        started = time.perf_counter()
        for i in range(scale.batches):
            first = i * batch % len(cache)
            classify_decoded(classifier, cache[first : first + batch], mean, std)
        sync(device)
        img_s = scale.batches * batch / (time.perf_counter() - started)
        add_row(report, Row("decoded", label, batch, img_s, read_peak(report)))

        files = cycled(paths, max(batch, scale.images - scale.images % batch))
        for _ in classifier.run(files[:batch], batch_size=batch):  # warm-up: the decoding threads, the copy
            pass
        reset_peak(device)
        sync(device)
        started = time.perf_counter()
        for _ in classifier.run(files, batch_size=batch):
            pass
        sync(device)
        img_s = len(files) / (time.perf_counter() - started)
        add_row(report, Row("files", label, batch, img_s, read_peak(report)))
    del classifier
    if device.type == "cuda":
        torch.cuda.empty_cache()  # so the next variant's peak is its own


def print_memory(report: Report) -> None:
    """The whole run's peak memory."""
    if report.device.type == "cuda":
        print(
            f"\npeak GPU memory: {report.peak_allocated:.0f} MiB allocated, {report.peak_reserved:.0f} MiB "
            f"reserved by PyTorch (whole run, {torch.cuda.get_device_name(report.device)})"
        )
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(
            f"\npeak GPU memory: n/a on {report.device}; peak resident set size of the process {rss:.0f} MiB"
        )


def fp32_of(report: Report, row: Row) -> float | None:
    """Eager fp32's img/s on the same inputs at the same batch size, if measured."""
    same = (row.inputs, row.batch, "fp32 eager")
    return next((r.img_s for r in report.rows if (r.inputs, r.batch, r.variant) == same), None)


def ratios(report: Report, row: Row) -> tuple[float | None, float | None]:
    """`row` against eager fp32 (same inputs and batch) and against the book's loop."""
    fp32 = fp32_of(report, row)
    return (
        row.img_s / fp32 if fp32 else None,
        row.img_s / report.book_img_s if report.book_img_s else None,
    )


def print_summary(report: Report) -> None:
    """Ratios of every variant against eager fp32 and the book's loop, and where the goal stands."""
    print("\nsummary: ratios against eager fp32 (same inputs, same batch) and against the book's loop")
    if report.compile_s:
        took = ", ".join(f"batch {b} {s:.1f} s" for b, s in report.compile_s.items())
        print(f"  torch.compile: the first batch of each size, compilation included (in no row): {took}")
    if not report.rows:
        print("  no throughput row was measured")
        return
    for inputs in ("files", "decoded"):
        for variant, _, _ in VARIANTS:
            rows = [r for r in report.rows if (r.inputs, r.variant) == (inputs, variant)]
            if not rows:
                continue
            got = [(r.batch, *ratios(report, r)) for r in rows]
            vs_fp32 = ", ".join(f"{f:.2f}x (batch {b})" for b, f, _ in got if f is not None) or "n/a"
            vs_book = ", ".join(f"{k:.2f}x (batch {b})" for b, _, k in got if k is not None) or "n/a"
            print(f"  {inputs:<8} {variant:<20} vs fp32 {vs_fp32}; vs book {vs_book}")
    where = ", a dry run: its figures measure nothing" if report.dry_run else ""
    print(f"  goal (issue 16): >= 10x the eager fp32 throughput on an H100/H200-class GPU{where}")
    for inputs in ("files", "decoded"):
        rows = [r for r in report.rows if r.inputs == inputs]
        if not rows:
            continue
        best = max(rows, key=lambda r: r.img_s)
        vs_fp32, vs_book = ratios(report, best)
        readings = [
            f"{ratio:.1f}x {what} ({'met' if ratio >= 10 else 'not met'})"
            for ratio, what in ((vs_book, "the book's loop"), (vs_fp32, "zoo's eager fp32 at that batch"))
            if ratio is not None
        ]
        print(
            f"  {inputs:<8} best: {best.variant}, batch {best.batch}, {best.img_s:.2f} img/s = "
            + "; ".join(readings)
        )


def finish(report: Report) -> None:
    """Print the memory report and the summary, once."""
    if report.printed.acquire(blocking=False):
        print_memory(report)
        print_summary(report)
        sys.stdout.flush()


def arm_watchdog(report: Report, budget: float) -> threading.Timer:
    """Raise OutOfBudget in the main thread after `budget` seconds; if the stage under way does not stop
    (stuck in native code), print what was measured and exit GRACE seconds later."""

    def on_alarm(signum: int, frame: object) -> None:
        if report.armed:
            report.armed = False
            raise OutOfBudget

    def hard_stop() -> None:
        print(
            f"\nstopped: {report.stage} did not stop within {GRACE:.0f} s of the budget running out",
            flush=True,
        )
        finish(report)
        os._exit(STOPPED)

    signal.signal(signal.SIGALRM, on_alarm)
    report.armed = True
    signal.setitimer(signal.ITIMER_REAL, budget)
    timer = threading.Timer(budget + GRACE, hard_stop)
    timer.daemon = True
    timer.start()
    return timer


def run(report: Report, scale: Scale, tmp: Path) -> None:
    """Every stage, in order."""
    device = report.device
    report.stage = "set-up"
    started = time.perf_counter()
    distinct = write_jpegs(tmp, scale.distinct, scale.sizes)
    data = manifest.read_raw(manifest.DEFAULT_MANIFEST)
    manifest.write_raw(data, os.environ["ZOO_MANIFEST"])  # register() reads the sizes it needs from it
    checkpoint = register(report.model, data)
    # A hard link in zoo's own cache, as a download by zoo leaves it: the warm cache of the first stage.
    link = Path(os.environ["ZOO_HOME"]) / "weights" / checkpoint.name
    link.parent.mkdir(parents=True, exist_ok=True)
    os.link(checkpoint, link)
    took = time.perf_counter() - started
    print(f"set-up: {len(distinct)} distinct JPEGs of {sorted(set(scale.sizes))}, used in turn")
    size = checkpoint.stat().st_size / 2**20
    print(
        f"set-up: a random {report.model} checkpoint of {size:.0f} MiB in the warm caches ({took:.1f} s in all)"
    )
    started = time.perf_counter()
    cache = decode_once(report.model, distinct, math.lcm(*scale.batch_sizes), device)
    print(
        f"set-up: {len(cache)} images decoded once into a uint8 cache ({time.perf_counter() - started:.1f} s)"
    )

    report.stage = "time to first output"
    first_output(report, scale.rounds)
    report.stage = "the book's loop"
    run_book(report, cycled(distinct, scale.book_images))
    for variant in VARIANTS:
        report.stage = f"zoo {variant[0]}"
        run_variant(report, scale, variant, distinct, cache)
    report.stage = "done"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the default), cuda:N or cpu")
    parser.add_argument("--model", default="resnet50", help="a torchvision classifier (default resnet50)")
    parser.add_argument("--dry-run", action="store_true", help="every stage at a tiny scale, in seconds")
    parser.add_argument("--budget", type=positive_float, default=270.0, help="seconds in all (default 270)")
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[64, 256])
    parser.add_argument("--images", type=positive_int, default=512, help="paths per 'files' row")
    parser.add_argument("--book-images", type=positive_int, default=64)
    parser.add_argument("--rounds", type=positive_int, default=5, help="time-to-first-output rounds")
    parser.add_argument("--batches", type=positive_int, default=20, help="timed batches per 'decoded' row")
    return parser.parse_args(argv)


def check_device(name: str, dry_run: bool) -> torch.device | str:
    """The device, or the one line that says why this run cannot use it."""
    try:
        device = torch.device(name)
    except RuntimeError:
        return f"bench/gpu.py: {name!r} is not a device; use cuda, cuda:N or cpu"
    if device.type not in ("cuda", "cpu"):
        return f"bench/gpu.py: {name!r}: only cuda and cpu are measured here"
    if device.type == "cuda" and not torch.cuda.is_available():
        return (
            f"bench/gpu.py: CUDA is not available on this machine (torch {torch.__version__}); "
            "run it on a GPU machine, or test the script with --device cpu --dry-run"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        return f"bench/gpu.py: {name} does not exist: {torch.cuda.device_count()} CUDA device(s) here"
    if device.type == "cpu" and not dry_run:
        print("bench/gpu.py: a full run on the CPU may not finish within the budget", file=sys.stderr)
    return device


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; the exit status: 0, 1 (the device cannot be used), or 3 (stopped by the budget)."""
    args = parse_args(argv)
    device = check_device(args.device, args.dry_run)
    if isinstance(device, str):
        print(device, file=sys.stderr)
        return 1
    scale = scale_for(args)
    if args.dry_run:
        # bf16 is emulated on most CPUs: zoo warns so, which says nothing here.
        warnings.filterwarnings("ignore", message=".*is emulated and slower than fp32.*")
    report = Report(device, args.model, args.dry_run)
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    cores = f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {device} ({what}), {cores}, budget {args.budget:g} s")
    if args.dry_run:
        print("dry run: tiny scale, torch.compile with the 'eager' backend; the figures measure nothing")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["TORCH_HOME"] = str(tmp_path / "torch_home")
        os.environ["ZOO_HOME"] = str(tmp_path / "zoo_home")
        os.environ["ZOO_MANIFEST"] = str(tmp_path / "manifest.json")
        # A cold compile cache every run, as on a fresh machine, and nothing left behind.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "inductor")
        started = time.perf_counter()
        timer = arm_watchdog(report, args.budget)
        stopped = False
        try:
            run(report, scale, tmp_path)
        except OutOfBudget:
            stopped = True
        finally:
            report.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            timer.cancel()
        if stopped:
            print(f"\nstopped: the budget of {args.budget:g} s ran out during {report.stage}")
            print("the rows above are all that was measured")
        finish(report)
        print(f"total {time.perf_counter() - started:.1f} s")
    return STOPPED if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
