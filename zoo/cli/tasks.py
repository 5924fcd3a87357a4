"""`zoo classify`, `zoo translate`, `zoo generate`, `zoo caption` and `zoo finetune`: the book's workflows as
commands."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ImageError, ZooError
from ..tasks.images import IMAGE_SUFFIXES
from .command import Subcommands, add_command

SAVE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer of at least `minimum` (a usage error otherwise, never a traceback)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


positive = at_least(1)
non_negative = at_least(0)


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0 (nan, inf and negative learning rates are usage errors)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value


def _weights(value: str) -> Any:
    return None if value.lower() == "none" else value


def _report(errors: list[ImageError]) -> None:
    from ..tasks.images import show_text

    for e in errors:
        print(f"zoo: error: {show_text(str(e))}", file=sys.stderr)


def classify_to_file(args: argparse.Namespace) -> int:
    """`zoo classify ... -o preds.jsonl`: sharded over torchrun's ranks, resumable, merged by rank 0."""
    from .. import distributed
    from ..tasks import Classifier
    from ..tasks.images import find_images, show_text
    from ..tasks.outputs import refuse_existing
    from ..tasks.predictions import Job, output_format

    output_format(Path(args.output))  # a bad suffix is refused before any work
    refuse_existing(Path(args.output), args.overwrite, "-o")  # a file of the user's is never replaced unasked
    distributed.init_for_command()
    w = distributed.world()
    lead = w.rank == 0
    device = distributed.device_for(args.device)
    paths, missing = find_images(args.inputs)
    if lead and not args.json:
        _report(missing)
    settings = {
        "model": args.model,
        "weights": str(args.weights),
        "topk": args.topk,
        "precision": args.precision,
        "categories": args.categories,
    }
    job = Job(args.output, paths, args.batch_size, settings)
    # Rank 0 checks and prepares; its refusal (another run's parts) is every rank's one-line error.
    distributed.on_rank_zero(lambda: job.prepare(restart=args.restart, leader=True))
    if not lead:
        job.prepare(restart=False, leader=False)
    with distributed.leader_first():  # one download per cache; the others read it
        classifier = Classifier(
            args.model,
            _weights(args.weights),
            device=device,
            precision=args.precision,
            categories=args.categories,
        )

    def progress(done: int, total: int) -> None:
        if lead and not args.json and sys.stderr.isatty():
            print(f"\rzoo: {done}/{total} units of rank 0", end="", file=sys.stderr, flush=True)

    job.run(
        lambda chunk: classifier.run(chunk, topk=args.topk, batch_size=args.batch_size),
        w.rank,
        w.world_size,
        progress=progress,
    )
    distributed.barrier()
    if not lead:
        return 0
    summary = job.merge(overwrite=args.overwrite)
    summary = {"output": str(args.output), **summary, "missing_inputs": len(missing)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"wrote {summary['images']} records to {show_text(args.output)} ({summary['errors']} unreadable images, "
            f"{w.world_size} process{'es' if w.world_size > 1 else ''})"
        )
    failed = summary["errors"] and args.fail_on_error
    return 1 if failed or missing else 0


def cmd_classify(args: argparse.Namespace) -> int:
    from ..tasks import Classifier  # torch and torchvision load only for the commands that need them
    from ..tasks.images import find_images, show_path, show_text

    if args.output is not None:
        return classify_to_file(args)
    paths, errors = find_images(args.inputs)
    if not args.json:
        _report(errors)
    results = []
    if paths:
        classifier = Classifier(
            args.model,
            _weights(args.weights),
            device=args.device,
            precision=args.precision,
            categories=args.categories,
        )
        for path, outcome in classifier.run(paths, topk=args.topk, batch_size=args.batch_size):
            if isinstance(outcome, ImageError):
                errors.append(outcome)
                if not args.json:
                    _report([outcome])
                continue
            shown = show_path(path)  # a file name that is not UTF-8 must not crash print() or JSON readers
            results.append(
                {
                    "path": shown,
                    "predictions": [{"label": show_path(lb), "percent": p} for lb, p in outcome],
                }
            )
            if not args.json:
                # Labels come from whoever made the weight file: escaped, so an ESC sequence or a newline in
                # one cannot recolour the terminal or fake a line of zoo's own.
                print(show_text(path))
                for label, percent in outcome:
                    print(f"  {show_text(label)} {percent:.2f}")
    if args.json:
        print(json.dumps({"results": results, "errors": [str(e) for e in errors]}, indent=2))
    return 1 if errors else 0


def cmd_translate(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..tasks import Translator
    from ..tasks.images import find_images, show_path, show_text
    from ..tasks.outputs import (
        check_output_dir,
        file_ids,
        image_format,
        is_one_of,
        make_output_dir,
        refuse_existing,
        write_atomic,
    )

    paths, errors = find_images(args.inputs)
    out = Path(args.output)
    single_file = out.suffix.lower() in SAVE_SUFFIXES and not out.is_dir()
    # Everything about the output is checked before the model loads: a refusal writes nothing.
    inputs = file_ids([*paths, *(p for p in args.inputs if Path(p).is_dir())])
    if is_one_of(out, inputs):
        raise ZooError(
            f"-o {show_path(out)} is one of the inputs; choose another {_file_or_folder(single_file)}"
        )
    if single_file:
        if len(paths) > 1:
            raise ZooError(
                f"-o {show_path(out)} is a file name, but {len(paths)} images were found; pass a folder"
            )
        image_format(out)
        refuse_existing(out, args.overwrite, "-o")
        check_output_dir(out.parent)
    else:
        check_output_dir(out)
    written: list[dict[str, Any]] = []
    skipped: list[str] = []
    # Under torchrun the images are dealt round-robin over the ranks; a single output file falls to rank 0.
    distributed.init_for_command()
    w = distributed.world()
    device = distributed.device_for(args.device)
    if paths:
        with distributed.leader_first():  # one download per cache
            translator = Translator(args.model, _weights(args.weights), device=device, size=args.size)
        if single_file:
            make_output_dir(out.parent)
        else:
            make_output_dir(out)
        pairs = list(zip(paths, _targets(out, paths, single_file), strict=True))[w.rank :: w.world_size]
        for path, target in pairs:
            if args.skip_existing and target.is_file() and not is_one_of(target, inputs):
                skipped.append(show_path(target))  # done by an earlier run (a torchrun restart)
                continue
            try:
                if is_one_of(target, inputs):  # pics/x.png translated into pics/: never over an input
                    raise ImageError(
                        f"{show_path(path)}: its output {show_path(target)} would replace an input; "
                        "choose another -o"
                    )
                if os.path.lexists(target) and not args.overwrite:
                    raise ImageError(
                        f"{show_path(path)}: its output {show_path(target)} already exists; "
                        "pass --overwrite to replace it"
                    )
                image = translator(path)
                fmt = image_format(target)
                write_atomic(
                    target, lambda tmp, im=image, f=fmt: im.save(tmp, format=f), overwrite=args.overwrite
                )
            except ImageError as e:
                errors.append(e)
                continue
            except ZooError as e:  # the output could not be written: report it with its input, go on
                errors.append(ImageError(f"{show_path(path)}: {e}"))
                continue
            written.append({"input": show_path(path), "output": show_path(target), "size": list(image.size)})
            if not args.json:
                print(f"{show_text(path)} -> {show_text(target)} ({image.width}x{image.height})")
    if not args.json:
        _report(errors)
        if skipped and w.rank == 0:
            print(f"skipped {len(skipped)} images whose output exists (--skip-existing)")
    else:
        report = {"results": written, "errors": [str(e) for e in errors]}
        print(json.dumps({**report, "skipped": skipped} if args.skip_existing else report, indent=2))
    return 1 if errors else 0


def _file_or_folder(single_file: bool) -> str:
    return "file" if single_file else "folder"


def _targets(out: Path, paths: list[Path], single_file: bool) -> list[Path]:
    """The output of each input, chosen before any is written: two inputs with one stem (a/x.jpg, b/x.png)
    get x.png and x-2.png, whatever happens to the first, so a refusal names the file that would really be
    written (a rerun's second x is refused for x-2.png, not for the first one's x.png)."""
    from ..tasks.images import show_path

    if single_file:
        return [out for _ in paths]
    taken: set[str] = set()
    targets = []
    for path in paths:
        first = out / f"{path.stem}.png"
        n, candidate = 1, first
        while show_path(candidate) in taken:
            n += 1
            candidate = first.with_name(f"{first.stem}-{n}{first.suffix}")
        taken.add(show_path(candidate))
        targets.append(candidate)
    return targets


def _generate_sharded(args: argparse.Namespace) -> tuple[Any, int]:
    """The grid's units dealt round-robin over torchrun's ranks, gathered on rank 0: the same images as one
    process makes from the same seed (a seed is drawn on rank 0 and shared when none is given)."""
    import torch.distributed as dist

    from .. import distributed
    from ..tasks.generation import generate, units_of

    w = distributed.world()
    seed = [args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")]
    dist.broadcast_object_list(seed, src=0)
    device = distributed.device_for(args.device)
    mine = range(w.rank, units_of(args.n), w.world_size)
    with distributed.leader_first():  # one download per cache
        done = generate(
            args.n, model=args.model, weights=_weights(args.weights), device=device, seed=seed[0], units=mine
        )
    gathered: list[Any] = [None] * w.world_size
    dist.all_gather_object(gathered, done)
    if w.rank != 0:
        return None, seed[0]
    import torch

    units = {u: images for part in gathered for u, images in part.items()}
    return torch.cat([units[u] for u in range(units_of(args.n))]), seed[0]


def cmd_generate(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..tasks import generate, save_grid
    from ..tasks.images import show_path, show_text
    from ..tasks.outputs import check_output_dir, make_output_dir, refuse_existing

    out = Path(args.output)
    if out.suffix.lower() not in SAVE_SUFFIXES:
        raise ZooError(
            f"-o {show_path(out)}: give an image file name ending in one of {', '.join(SAVE_SUFFIXES)}"
        )
    refuse_existing(out, args.overwrite, "-o")  # before the model loads: a refusal costs nothing
    check_output_dir(out.parent)
    if distributed.init_for_command():
        images, seed = _generate_sharded(args)
        if images is None:
            return 0  # not rank 0: rank 0 saves the grid
    else:
        seed = args.seed
        images = generate(
            args.n, model=args.model, weights=_weights(args.weights), device=args.device, seed=seed
        )
    make_output_dir(out.parent)
    save_grid(images, out, nrow=args.nrow, overwrite=args.overwrite)
    info = {"output": show_path(out), "n": args.n, "image_size": list(images.shape[1:]), "seed": seed}
    print(json.dumps(info, indent=2) if args.json else f"wrote {args.n} images to {show_text(out)}")
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from ..tasks import Captioner
    from ..tasks.captioning import page_targets, write_page
    from ..tasks.images import find_images, show_path, show_text
    from ..tasks.outputs import check_output_dir, file_ids, is_one_of, refuse_existing

    paths, errors = find_images(args.inputs)
    if not args.json:
        _report(errors)
    inputs = file_ids([*paths, *(p for p in args.inputs if Path(p).is_dir())])
    if args.html is not None:
        # The page's folder and files are checked before the model loads: a refusal writes nothing.
        out = Path(args.html)
        if is_one_of(out, inputs):
            raise ZooError(f"--html {show_path(out)} is one of the inputs; choose another folder")
        check_output_dir(out, "page folder")
        for target in page_targets(out, len(paths)):
            if is_one_of(target, inputs):
                raise ZooError(f"--html {show_path(out)} would replace the input {show_path(target)}")
            refuse_existing(target, args.overwrite, "--html file")
    results: list[dict[str, Any]] = []
    captioned: list[tuple[int, Path, str]] = []
    if paths:
        extra = {k: v for k, v in (("infos", args.infos), ("encoder", args.encoder)) if v is not None}
        captioner = Captioner(
            args.model,
            _weights(args.weights),
            device=args.device,
            beam_size=args.beam_size,
            rule=args.rule,
            **extra,
        )
        ids = {path: n for n, path in enumerate(paths, 1)}  # the book's ids: 1, 2, ... in folder order
        for path, outcome in captioner.run(paths):
            if isinstance(outcome, ImageError):
                errors.append(outcome)
                if not args.json:
                    _report([outcome])
                continue
            captioned.append((ids[path], path, outcome))
            results.append({"image_id": str(ids[path]), "path": show_path(path), "caption": outcome})
            if not args.json:
                # Words come from whoever made the vocabulary: escaped, as classify's labels are.
                print(f"image {ids[path]}: {show_text(outcome)}")
    page = None
    if args.html is not None and captioned:
        page = write_page(args.html, captioned, overwrite=args.overwrite)
        if not args.json:
            print(f"wrote {show_text(page)}")
    if args.json:
        report = {"results": results, "errors": [str(e) for e in errors]}
        if page is not None:
            report["page"] = show_path(page)
        print(json.dumps(report, indent=2))
    return 1 if errors else 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..tasks import finetune
    from ..tasks.images import show_text

    # Under torchrun: DistributedDataParallel over the ranks (gloo on CPU, nccl with CUDA), rank 0 writes.
    distributed.init_for_command()
    device = distributed.device_for(args.device)

    # Log lines name class folders and files: escaped for the terminal (the card keeps the real names).
    stream = sys.stderr if args.json else sys.stdout
    log = lambda line: print(show_text(line), file=stream)  # noqa: E731
    card = finetune(
        args.data_dir,
        args.output,
        model=args.model,
        weights=_weights(args.weights),
        epochs=args.epochs,
        freeze_backbone=args.freeze_backbone,
        lr=args.lr,
        batch_size=args.batch_size,
        val_fraction=args.val_fraction,
        image_size=args.image_size,
        device=device,
        seed=args.seed,
        workers=args.workers,
        overwrite=args.overwrite,
        resume=args.resume,
        log=log,
    )
    if args.json and distributed.world().rank == 0:
        print(json.dumps(card, indent=2))
    return 0


def register(sub: Subcommands) -> None:
    """Add the task commands to the CLI's subcommands."""

    def add(name: str, fn: Any, help: str) -> argparse.ArgumentParser:
        return add_command(sub, name, fn, help, device=True)

    p = add("classify", cmd_classify, "label images with an ImageNet (or your fine-tuned) classifier")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="IMAGE|DIR",
        help=f"images or folders ({' '.join(sorted(IMAGE_SUFFIXES))})",
    )
    p.add_argument(
        "--model",
        help="architecture; when left out, the one a --weights file's card records, else resnet101",
    )
    p.add_argument("--weights", default="DEFAULT", help="a weights key or tag, a local file, or none")
    p.add_argument(
        "--categories",
        metavar="FILE",
        help="class names, one per line (e.g. imagenet_classes.txt), instead of the weights' own",
    )
    p.add_argument("--topk", type=positive, default=5)
    p.add_argument("--batch-size", type=positive, default=32)
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16", "auto"],
        default="fp32",
        help="fp32 (default: torchvision's numbers); auto: bf16 where the CPU (AVX512_BF16, AMX) or GPU "
        "computes it natively, else fp32",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write one record per image to FILE (.jsonl or .csv): the same under torchrun, resumable",
    )
    p.add_argument("--restart", action="store_true", help="with -o: drop a run of other inputs or settings")
    p.add_argument("--overwrite", action="store_true", help="with -o: replace the file if it exists")
    p.add_argument(
        "--fail-on-error", action="store_true", help="with -o: exit 1 if any image could not be read"
    )

    p = add("translate", cmd_translate, "translate images with the CycleGAN (horse to zebra)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR")
    p.add_argument("-o", "--output", required=True, help="an image file (one input) or a folder")
    p.add_argument(
        "--model",
        help="architecture; when left out, the one a --weights file's card records, else cyclegan",
    )
    p.add_argument("--weights", default="horse2zebra")
    p.add_argument(
        "--size", type=positive, default=256, help="shorter side of the input, as in the book (256)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace output files that already exist (an input is never replaced; -o may not be an "
        "input file or folder)",
    )
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave images whose output exists (resuming a run, e.g. after a torchrun restart)",
    )

    p = add("caption", cmd_caption, "describe images in words with the book's NeuralTalk2 captioner")
    p.add_argument("inputs", nargs="+", metavar="IMAGE|DIR", help="images or folders, used at full size")
    p.add_argument(
        "--model",
        help="architecture; when left out, the one a --weights file's card records, else neuraltalk2",
    )
    p.add_argument(
        "--weights",
        default="DEFAULT",
        help="DEFAULT (the book's files), shapes (the zoo's own scene captioner, bundled), a key, or the "
        "book's fc-model.pth with --infos and --encoder",
    )
    p.add_argument(
        "--infos", metavar="FILE", help="the book's fc-infos.pkl (vocabulary), with a --weights file"
    )
    p.add_argument("--encoder", metavar="FILE", help="the book's resnet101.pth, with a --weights file")
    p.add_argument(
        "--beam-size", type=positive, default=2, help="1 is greedy decoding (default: 2, the book's)"
    )
    p.add_argument(
        "--rule",
        choices=["first", "best"],
        default="first",
        help="which finished beam is returned: the first to finish (the book's code) or the best-scoring",
    )
    p.add_argument(
        "--html",
        metavar="OUT_DIR",
        help="also write OUT_DIR/index.html showing each image with its caption (and vis.json, imgs/)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the --html files if they exist")

    p = add("generate", cmd_generate, "generate images from noise and save them as a grid")
    p.add_argument("-n", type=positive, default=64, help="number of images")
    p.add_argument("-o", "--output", required=True, help="grid image file, e.g. grid.png")
    p.add_argument(
        "--model",
        help="architecture; when left out, the one a --weights file's card records, else dcgan",
    )
    p.add_argument("--weights", default="DEFAULT")
    p.add_argument("--nrow", type=positive, default=8, help="images per row")
    p.add_argument("--seed", type=int, help="the same seed gives the same grid")
    p.add_argument("--overwrite", action="store_true", help="replace the -o file if it exists")

    p = add("finetune", cmd_finetune, "fine-tune a classifier on an ImageFolder (one sub-folder per class)")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("-o", "--output", required=True, help="folder for model.safetensors and model.json")
    p.add_argument(
        "--model",
        help="architecture; when left out, the one a --weights file's card records, else resnet18",
    )
    p.add_argument("--weights", default="DEFAULT", help="pretrained weights to start from, or none")
    p.add_argument("--epochs", type=positive, default=5)
    p.add_argument("--freeze-backbone", action="store_true", help="train only the new head")
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--batch-size", type=positive, default=32)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument(
        "--image-size", type=positive, help="crop size instead of the preset's (smaller is faster)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers",
        type=non_negative,
        help="data-loading processes, 0 to load in this one (default: up to 4)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace model.safetensors, model.json and checkpoint.pt in -o if they exist from an earlier run",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on from -o's checkpoint.pt (after a crash or a torchrun restart, or to train more epochs)",
    )
