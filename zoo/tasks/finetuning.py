"""Fine-tune a pretrained classifier on an ImageFolder of your own classes (the torchvision lesson).

The head is replaced for the classes found, a validation split is held out, and the best epoch's weights
are written as safetensors with a JSON of class names and metrics, ready for `zoo publish`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate
from torchvision.datasets import ImageFolder
from torchvision.transforms._presets import ImageClassification
from tqdm.auto import tqdm

from .. import registry
from ..devices import resolve_device
from ..errors import ImageError, InvalidArgumentError
from ..weights import cards, presets
from ..weights.manifest import Weights
from ..weights.selection import local_file, select_weights
from .classification import choose_model, head_of
from .images import IMAGE_SUFFIXES, open_image, prepare_error, show_path
from .outputs import check_output_dir, file_ids, is_one_of, make_output_dir, refuse_existing, write_atomic

# The files a run writes into its output folder (replaced only with overwrite=True).
OUTPUT_FILES = ("model.safetensors", "model.json", "checkpoint.pt")
CHECKPOINT = "checkpoint.pt"  # the last epoch's weights, optimizer and history, for `resume`
# A crop side beyond any classifier's training size; a typo like 22400 would otherwise allocate gigabytes.
MAX_IMAGE_SIZE = 2048


class _Transformed(Dataset):
    """A subset of an ImageFolder with its own transform (train and validation differ)."""

    def __init__(
        self,
        folder: ImageFolder,
        indices: list[int],
        transform: Callable[[Any], torch.Tensor],
        seed: int | None = None,
    ) -> None:
        self.samples = [folder.samples[i] for i in indices]
        self.transform = transform
        self.seed = seed  # random augmentation: drawn from (seed, epoch, sample), whoever loads the sample
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | None:
        path, label = self.samples[i]
        if self.seed is not None:
            # The same crop and flip for a sample whether one process or many, with or without workers, load
            # it: training does not depend on the world size (torchvision's transforms draw from torch's RNG).
            torch.manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_003 + i)
        try:
            return self.transform(open_image(path)), label
        except ImageError:  # changed on disk since it was checked: dropped by _collate, not the whole run
            return None
        except Exception as e:
            raise prepare_error(path, e) from None


def _collate(batch: list[tuple[torch.Tensor, int] | None]) -> Any:
    """default_collate without the samples that could not be read (None when none could)."""
    kept = [b for b in batch if b is not None]
    return default_collate(kept) if kept else None


def split_indices(targets: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A per-class (stratified) random split; every class with two or more images gets one in validation."""
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in sorted(set(targets)):
        members = [i for i, t in enumerate(targets) if t == label]
        order = [members[j] for j in torch.randperm(len(members), generator=generator).tolist()]
        n_val = min(len(order) - 1, max(1, math.floor(len(order) * val_fraction))) if val_fraction > 0 else 0
        val += order[:n_val]
        train += order[n_val:]
    return sorted(train), sorted(val)


def _run_epoch(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None,
    show: bool,
    desc: str,
    frozen: list[nn.Module] = (),
) -> tuple[float, float]:
    """One pass over `loader`: training when an optimizer is given, else evaluation. (mean loss, accuracy)"""
    model.train(optimizer is not None)
    for m in frozen:  # a frozen backbone keeps its BatchNorm statistics too
        m.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    criterion = nn.CrossEntropyLoss()
    with (
        torch.set_grad_enabled(optimizer is not None),
        tqdm(loader, disable=not show, desc=desc, leave=False) as bar,
    ):
        for batch in bar:
            if batch is None:
                continue
            x, y = batch[0].to(device), batch[1].to(device)
            logits = model(x)
            if isinstance(logits, tuple):  # GoogLeNet's auxiliary outputs in training mode
                logits = logits[0]
            loss = criterion(logits, y)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    if dist.is_available() and dist.is_initialized():  # every rank's shard: the whole set's figures
        sums = torch.tensor([loss_sum, correct, seen], dtype=torch.float64)
        dist.all_reduce(sums)
        loss_sum, correct, seen = sums[0].item(), int(sums[1].item()), int(sums[2].item())
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def finetune(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    model: str | None = None,
    weights: Any = "DEFAULT",
    epochs: int = 5,
    freeze_backbone: bool = False,
    lr: float = 1e-3,
    batch_size: int = 32,
    val_fraction: float = 0.2,
    image_size: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune `model` on the ImageFolder `data_dir` (one sub-folder per class) and save the best epoch.

    Writes `out_dir/model.safetensors`, which carries its card (arch, categories, preset, metrics, settings)
    in its own metadata, and the same card as `out_dir/model.json`; returns the card. `model=None`: the
    architecture a local `weights` file's card records, else resnet18. `weights=None` trains from scratch;
    `freeze_backbone` trains only the new head; `image_size` overrides the preset's crop size (smaller is
    faster). Prints one line per epoch.

    Everything is checked before training: files that are not readable images are skipped (and listed);
    a class folder left without one, fewer than two classes, or an output folder inside `data_dir` is an
    InvalidArgumentError. Existing `model.safetensors`/`model.json` in `out_dir` are kept (an error) unless
    `overwrite`; both are written atomically. Class folder names that are not UTF-8 are recorded with
    `\\xNN` escapes.

    After each epoch `out_dir/checkpoint.pt` holds the weights, optimizer state and history; `resume` goes on
    from it (after a crash or a torchrun restart, or to train more epochs) and gives the weights an
    uninterrupted run would (the order and augmentation are drawn per epoch from `seed`). Its data, model and
    settings other than `epochs` must be the checkpoint's.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not data_dir.is_dir():
        raise InvalidArgumentError(
            f"{show_path(data_dir)}: no such folder (expected one sub-folder of images per class)"
        )
    if epochs < 1 or batch_size < 1 or not 0 <= val_fraction < 1:
        raise InvalidArgumentError(
            "epochs and batch size must be at least 1, and the validation fraction in [0, 1)"
        )
    if not (math.isfinite(lr) and lr > 0):
        raise InvalidArgumentError(f"lr must be a finite number above 0, not {lr}")
    if workers is not None and workers < 0:
        raise InvalidArgumentError(f"workers must be at least 0, not {workers}")
    if image_size is not None and not 16 <= image_size <= MAX_IMAGE_SIZE:
        raise InvalidArgumentError(f"image_size must be from 16 to {MAX_IMAGE_SIZE} pixels, not {image_size}")
    _check_out_dir(data_dir, out_dir, overwrite or resume, weights)
    torch.manual_seed(seed)
    target = resolve_device(device)
    arch, start_card = choose_model(model, weights, "resnet18")
    resolved = select_weights(arch, weights)

    # The starting weights' preprocessing: a manifest entry's preset, or a local file's card's.
    if isinstance(resolved, Weights):
        preset = resolved.transforms()
    elif start_card.get("transforms"):  # a card's preset that cannot be built is refused (see preset_for)
        preset = presets.build(start_card["transforms"], f"{show_path(resolved)}: its card's transforms")
    else:
        preset = None
    if not isinstance(preset, ImageClassification):
        preset = ImageClassification(crop_size=224)
    if image_size:
        preset = ImageClassification(
            crop_size=image_size, resize_size=round(image_size * preset.resize_size[0] / preset.crop_size[0])
        )

    folder = _image_folder(data_dir)
    _refuse_inputs(out_dir, None, [p for p, _ in folder.samples])
    unreadable = _unreadable([p for p, _ in folder.samples], preset.resize_size[0])
    if unreadable:
        shown = "; ".join(str(e) for e in unreadable.values())
        log(f"skipping {len(unreadable)} file(s) that are not images: {_shorten(shown)}")
        kept = [(p, t) for p, t in folder.samples if p not in unreadable]
        folder.samples, folder.targets = kept, [t for _, t in kept]
    classes = _class_names(folder)
    # The whole dataset is checked before the model is built or a file written: a class the head would
    # have but no image could teach is an error, not a silently useless output.
    present = set(folder.targets)
    empty = [name for i, name in enumerate(classes) if i not in present]
    if empty:
        raise InvalidArgumentError(
            f"{show_path(data_dir)}: no readable image in the class folder(s) {', '.join(empty)}; "
            "add images or remove the folder(s)"
        )
    # GoogLeNet and Inception v3: the input transform their ImageNet weights expect, used from scratch too,
    # because a saved checkpoint is reloaded with it; no auxiliary heads (in training mode they would turn
    # the output into a tuple, and their outputs would only be thrown away).
    inception = arch in ("googlenet", "inception_v3")
    arch_kwargs = {"transform_input": True, "aux_logits": False} if inception else {}
    net = registry.get_model(arch, weights=resolved, num_classes=len(classes), device=target, **arch_kwargs)
    head = head_of(net)
    frozen: list[nn.Module] = []
    if freeze_backbone:
        for p in net.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
        frozen = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    train_idx, val_idx = split_indices(folder.targets, val_fraction, seed)
    # Under torchrun (a process group opened by the caller): DistributedDataParallel, `batch_size` the global
    # batch. The training order is the DistributedSampler's with one process too, so that a step sees the same
    # images whatever the number of processes; validation is split without padding and its counts summed.
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    if batch_size % world_size:
        raise InvalidArgumentError(
            f"the batch size ({batch_size}, the global batch) must be a multiple of the {world_size} processes"
        )
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    loader_args = {
        "batch_size": batch_size // world_size,
        "num_workers": workers,
        "pin_memory": target.type == "cuda",
        "collate_fn": _collate,
        "persistent_workers": workers > 0,  # not restarted every epoch
    }
    train_set = _Transformed(folder, train_idx, presets.image_classification_train(preset), seed)
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    train_loader = DataLoader(train_set, sampler=sampler, **loader_args)
    val_shard = val_idx[rank::world_size]
    val_loader = DataLoader(_Transformed(folder, val_shard, preset), **loader_args) if val_idx else None
    trained = DistributedDataParallel(net) if world_size > 1 else net
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    lead = rank == 0
    if not lead:
        log = lambda line: None  # noqa: E731  (rank 0 speaks for all)
    show = sys.stderr.isatty() if progress is None else progress

    settings = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "freeze_backbone": freeze_backbone,
        "val_fraction": val_fraction,
        "seed": seed,
        "data_dir": show_path(data_dir),
    }
    if lead:
        make_output_dir(out_dir)
    best: dict[str, Any] | None = None
    history: list[dict[str, Any]] = []
    first = 1
    identity = {**{k: v for k, v in settings.items() if k != "epochs"}, "arch": arch, "classes": classes}
    if resume and (out_dir / CHECKPOINT).is_file():
        saved = torch.load(out_dir / CHECKPOINT, map_location=target, weights_only=True)
        if saved.get("identity") != identity:
            raise InvalidArgumentError(
                f"{show_path(out_dir / CHECKPOINT)} is of another run (data, model or settings); "
                "resume with the same ones, or start over with --overwrite"
            )
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        best, history, first = saved["best"], saved["history"], saved["epoch"] + 1
        log(f"resuming after epoch {saved['epoch']}")
    log(
        f"fine-tuning {arch} on {len(classes)} classes: {len(train_idx)} training, {len(val_idx)} validation images"
        + (f", {world_size} processes" if world_size > 1 else "")
    )
    for epoch in range(first, epochs + 1):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        train_set.epoch = epoch
        train_loss, train_acc = _run_epoch(
            trained, train_loader, target, optimizer, show and lead, f"epoch {epoch} train", frozen
        )
        val_loss, val_acc = (
            _run_epoch(net, val_loader, target, None, show and lead, f"epoch {epoch} val")
            if val_loader
            else (math.nan, math.nan)
        )
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
        }
        history.append(row)
        log(
            f"Epoch {epoch}/{epochs}: train loss {train_loss:.4f}, train acc {train_acc:.4f}, "
            f"val loss {val_loss:.4f}, val acc {val_acc:.4f} ({time.perf_counter() - started:.1f}s)"
        )
        score = val_acc if val_loader else -train_loss
        if best is None or score > best["score"]:
            best = {"score": score, **row}
            # Written with every new best, so weights and card never disagree, even after an interruption.
            card = _finite(_card(arch, classes, resolved, best, history, preset, settings))
            # Replaced freely once this run has written them; before that, only with overwrite.
            if lead:
                _save(net, out_dir / "model.safetensors", card, overwrite or resume or epoch > 1)
                _write_json(out_dir / "model.json", card, overwrite or resume or epoch > 1)
        if lead:  # after the best: a crash between the two resumes from an epoch whose best is saved
            state = {
                "epoch": epoch,
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "best": best,
                "history": history,
                "identity": identity,
            }
            write_atomic(out_dir / CHECKPOINT, lambda tmp, st=state: torch.save(st, tmp), overwrite=True)
    if best is None:
        raise InvalidArgumentError(f"{show_path(out_dir / CHECKPOINT)} has all {epochs} epochs already")
    card = _finite(_card(arch, classes, resolved, best, history, preset, settings))
    if lead:
        _write_json(out_dir / "model.json", card, True)
    log(
        f"best epoch {best['epoch']} (val acc {best['val_acc']:.4f}) saved to "
        f"{show_path(out_dir / 'model.safetensors')}"
    )
    return card


def _card(
    arch: str,
    classes: list[str],
    resolved: Any,
    best: dict[str, Any],
    history: list[dict[str, Any]],
    preset: ImageClassification,
    settings: dict[str, Any],
) -> dict[str, Any]:
    return {
        "arch": arch,
        "num_classes": len(classes),
        "categories": classes,
        "base_weights": resolved.key
        if isinstance(resolved, Weights)
        else (str(resolved) if resolved else None),
        "metrics": {k: best[k] for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")},
        "transforms": {
            "preset": "image_classification",
            "crop_size": preset.crop_size[0],
            "resize_size": preset.resize_size[0],
        },
        "history": list(history),
        "settings": settings,
    }


def _write_json(path: Path, data: dict[str, Any], overwrite: bool) -> None:
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"  # ASCII: class names came through show_path
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), overwrite=overwrite)


def _check_out_dir(data_dir: Path, out_dir: Path, overwrite: bool, weights: Any = None) -> None:
    """Refuse, before any work, an output folder that would become a class of the data, whose files would
    replace the starting `weights`, or whose files from an earlier run would be replaced without
    `overwrite`."""
    data, out = data_dir.resolve(), out_dir.resolve()
    if out == data or data in out.parents:
        raise InvalidArgumentError(
            f"the output folder {show_path(out_dir)} is inside the data folder {show_path(data_dir)}, where it "
            "would be read as a class; choose a folder outside it"
        )
    check_output_dir(out_dir)
    _refuse_inputs(out_dir, weights, [])
    for name in OUTPUT_FILES:
        refuse_existing(out_dir / name, overwrite, "the output file")


def _refuse_inputs(out_dir: Path, weights: Any, samples: list[str]) -> None:
    """Refuse, even with `overwrite`, an output file that is one of the run's inputs under any name: the
    starting weight file or its JSON sidecar (`-o run1 --weights run1/model.safetensors` would replace the
    checkpoint it starts from), or an image of the data folder (a hard link to it)."""
    start = local_file(weights)
    starting = file_ids([start, *cards.sidecar_paths(start)] if start is not None else [])
    images = file_ids(samples)
    for name in OUTPUT_FILES:
        target = out_dir / name
        if is_one_of(target, starting):
            raise InvalidArgumentError(
                f"the output file {show_path(target)} is the starting weights (--weights) or their card; "
                "it would be replaced by the new ones, even with --overwrite: choose another output folder"
            )
        if is_one_of(target, images):
            raise InvalidArgumentError(
                f"the output file {show_path(target)} is an image of the data folder; "
                "choose another output folder"
            )


def _unreadable(paths: list[str], min_side: int) -> dict[str, ImageError]:
    """The files that do not decode (or are not regular files), each with its error; decoded on threads
    (Pillow releases the GIL), with JPEG draft mode at the preset's size."""

    def check(path: str) -> ImageError | None:
        try:
            open_image(path, min_side=min_side)
        except ImageError as e:
            return e
        return None

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoo-check") as pool:
        outcomes = list(pool.map(check, paths))
    return {p: e for p, e in zip(paths, outcomes, strict=True) if e is not None}


def _shorten(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def _class_names(folder: ImageFolder) -> list[str]:
    """The class names as they are written to the card: folder names whose bytes are not UTF-8 become
    `\\xNN` escapes (JSON and safetensors metadata hold only Unicode)."""
    names = [show_path(c) for c in folder.classes]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(
            f"{show_path(folder.root)}: two class folders have the same printable name "
            f"({', '.join(sorted(n for n in names if names.count(n) > 1))}); rename one"
        )
    return names


def _finite(value: Any) -> Any:
    # JSON has no NaN (no validation split gives NaN validation metrics): write null.
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


class _Folder(ImageFolder):
    """ImageFolder without hidden folders (`.ipynb_checkpoints`, `.git`), walking each real folder once."""

    @staticmethod
    def make_dataset(
        directory: str | os.PathLike,
        class_to_idx: dict[str, int],
        extensions: tuple[str, ...] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        # Links to folders are followed, as torchvision does (class folders linked from elsewhere are common),
        # but each real folder is walked once: torchvision's os.walk(followlinks=True) loops on a link to a
        # parent, and two such links per level made the walk exponential (a review's 3-file data set ran past
        # 90 s without a line of output).
        assert is_valid_file is not None  # _image_folder always passes one
        samples: list[tuple[str, int]] = []
        for name in sorted(class_to_idx):
            seen: set[tuple[int, int]] = set()
            pending = [os.path.join(directory, name)]
            while pending:
                folder = pending.pop()
                try:
                    st = os.stat(folder)
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                    entries = sorted(os.scandir(folder), key=lambda e: e.name)
                except OSError:
                    continue  # unreadable or vanished: its images are missing, reported as an empty class if so
                subfolders = []
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        continue
                    if is_dir:
                        subfolders.append(entry.path)
                    elif is_valid_file(entry.path):
                        samples.append((entry.path, class_to_idx[name]))
                pending.extend(reversed(subfolders))  # depth first, in name order
        return samples

    def find_classes(self, directory: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
        classes = sorted(
            entry.name for entry in os.scandir(directory) if entry.is_dir() and not entry.name.startswith(".")
        )
        return classes, {name: i for i, name in enumerate(classes)}


def _image_folder(data_dir: Path) -> ImageFolder:
    try:
        folder = _Folder(
            str(data_dir),
            loader=lambda p: p,
            is_valid_file=lambda p: (
                Path(p).suffix.lower() in IMAGE_SUFFIXES and not Path(p).name.startswith(".")
            ),
            allow_empty=True,  # empty classes are reported below, by name, after unreadable files are dropped
        )
    except OSError as e:
        raise InvalidArgumentError(
            f"{show_path(data_dir)}: cannot read it ({e.strerror or e}); expected one sub-folder of images per class"
        ) from None
    if len(folder.classes) < 2:
        found = f" ({', '.join(show_path(c) for c in folder.classes)})" if folder.classes else ""
        raise InvalidArgumentError(
            f"{show_path(data_dir)}: found {len(folder.classes)} class folder(s){found}; fine-tuning needs "
            "at least two (one sub-folder of images per class)"
        )
    return folder


def _save(model: nn.Module, path: Path, card: dict[str, Any], overwrite: bool) -> None:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = cards.metadata(card)  # the card travels with every copy
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata), overwrite=overwrite)
