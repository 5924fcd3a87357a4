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
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder
from torchvision.transforms._presets import ImageClassification
from tqdm.auto import tqdm

from .. import registry
from .._common import write_text_atomic
from ..devices import resolve_device
from ..errors import InvalidArgumentError
from ..weights import cards, presets
from ..weights.manifest import Weights
from ..weights.selection import select_weights
from .classification import choose_model, head_of
from .images import IMAGE_SUFFIXES, open_image


class _Transformed(Dataset):
    """A subset of an ImageFolder with its own transform (train and validation differ)."""

    def __init__(
        self, folder: ImageFolder, indices: list[int], transform: Callable[[Any], torch.Tensor]
    ) -> None:
        self.samples = [folder.samples[i] for i in indices]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        return self.transform(open_image(path)), label


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
        for x, y in bar:
            x, y = x.to(device), y.to(device)
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
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune `model` on the ImageFolder `data_dir` (one sub-folder per class) and save the best epoch.

    Writes `out_dir/model.safetensors`, which carries its card (arch, categories, preset, metrics, settings)
    in its own metadata, and the same card as `out_dir/model.json`; returns the card. `model=None`: the
    architecture a local `weights` file's card records, else resnet18. `weights=None` trains from scratch;
    `freeze_backbone` trains only the new head; `image_size` overrides the preset's crop size (smaller is
    faster). Prints one line per epoch.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not data_dir.is_dir():
        raise InvalidArgumentError(
            f"{data_dir}: no such folder (expected one sub-folder of images per class)"
        )
    if epochs < 1 or batch_size < 1 or not 0 <= val_fraction < 1:
        raise InvalidArgumentError(
            "epochs and batch size must be at least 1, and the validation fraction in [0, 1)"
        )
    torch.manual_seed(seed)
    target = resolve_device(device)
    arch, start_card = choose_model(model, weights, "resnet18")
    resolved = select_weights(arch, weights)
    folder = _image_folder(data_dir)
    unreadable = [p for p, _ in folder.samples if not _identifies(p)]
    if unreadable:
        log(f"skipping {len(unreadable)} file(s) that are not images: {', '.join(unreadable[:5])}")
        kept = [(p, t) for p, t in folder.samples if p not in set(unreadable)]
        folder.samples, folder.targets = kept, [t for _, t in kept]
    classes = folder.classes
    # GoogLeNet: the input transform its ImageNet weights expect, used from scratch too, because a saved
    # checkpoint is reloaded with it; no auxiliary heads (their outputs would only be thrown away).
    arch_kwargs = {"transform_input": True, "aux_logits": False} if arch == "googlenet" else {}
    net = registry.get_model(arch, weights=resolved, num_classes=len(classes), device=target, **arch_kwargs)
    head = head_of(net)
    frozen: list[nn.Module] = []
    if freeze_backbone:
        for p in net.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
        frozen = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    # The starting weights' preprocessing: a manifest entry's preset, or a local file's card's.
    if isinstance(resolved, Weights):
        preset = resolved.transforms()
    else:
        preset = presets.build(start_card.get("transforms"))
    if not isinstance(preset, ImageClassification):
        preset = ImageClassification(crop_size=224)
    if image_size:
        preset = ImageClassification(
            crop_size=image_size, resize_size=round(image_size * preset.resize_size[0] / preset.crop_size[0])
        )
    train_idx, val_idx = split_indices(folder.targets, val_fraction, seed)
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    loader_args = {
        "batch_size": batch_size,
        "num_workers": workers,
        "pin_memory": target.type == "cuda",
        "persistent_workers": workers > 0,  # not restarted every epoch
    }
    train_loader = DataLoader(
        _Transformed(folder, train_idx, presets.image_classification_train(preset)),
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        **loader_args,
    )
    val_loader = DataLoader(_Transformed(folder, val_idx, preset), **loader_args) if val_idx else None
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    show = sys.stderr.isatty() if progress is None else progress

    settings = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "freeze_backbone": freeze_backbone,
        "val_fraction": val_fraction,
        "seed": seed,
        "data_dir": str(data_dir),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    best: dict[str, Any] | None = None
    history = []
    log(
        f"fine-tuning {arch} on {len(classes)} classes: {len(train_idx)} training, {len(val_idx)} validation images"
    )
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = _run_epoch(
            net, train_loader, target, optimizer, show, f"epoch {epoch} train", frozen
        )
        val_loss, val_acc = (
            _run_epoch(net, val_loader, target, None, show, f"epoch {epoch} val")
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
            _save(net, out_dir / "model.safetensors", card)
            _write_json(out_dir / "model.json", card)
    assert best is not None
    card = _finite(_card(arch, classes, resolved, best, history, preset, settings))
    _write_json(out_dir / "model.json", card)
    log(
        f"best epoch {best['epoch']} (val acc {best['val_acc']:.4f}) saved to {out_dir / 'model.safetensors'}"
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


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def _identifies(path: str) -> bool:
    # Reads the header only: cheap enough to check every file before training starts.
    try:
        with Image.open(path) as im:
            return im.width > 0 and im.height > 0
    except Exception:
        return False


def _finite(value: Any) -> Any:
    # JSON has no NaN (no validation split gives NaN validation metrics): write null.
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def _image_folder(data_dir: Path) -> ImageFolder:
    try:
        folder = ImageFolder(
            str(data_dir),
            loader=lambda p: p,
            is_valid_file=lambda p: Path(p).suffix.lower() in IMAGE_SUFFIXES,
        )
    except (FileNotFoundError, RuntimeError) as e:
        raise InvalidArgumentError(f"{data_dir}: {e} (expected one sub-folder of images per class)") from None
    if len(folder.classes) < 2:
        raise InvalidArgumentError(
            f"{data_dir}: found {len(folder.classes)} class folder(s); fine-tuning needs at least two"
        )
    return folder


def _save(model: nn.Module, path: Path, card: dict[str, Any]) -> None:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=cards.metadata(card))  # the card travels with every copy
    os.replace(tmp, path)
