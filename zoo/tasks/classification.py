"""Image classification as in the book: preset preprocessing, softmax x 100, the top labels."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torchvision.transforms._presets import ImageClassification

from .. import registry
from ..devices import (
    autocast,
    fold_batchnorm,
    for_inference,
    resolve_device,
    resolve_precision,
    warn_if_emulated,
)
from ..errors import ImageError, InvalidArgumentError
from ..store.small_files import FileTooLarge, NotRegularFile, read_regular
from ..weights import cards, manifest, presets
from ..weights.manifest import Weights
from ..weights.selection import local_file, select_weights
from . import fused_conv
from .images import check_resizable, open_image, prepare_error, show_path, to_rgb
from .prefetch import prefetch

# On CPU the model runs on pieces of a batch: 4 images keep activations in cache (32 at once measured 30-40 %
# slower per image), and the fused convolutions' weights are packed for this size.
CPU_CHUNK = 4
ImageInput = str | os.PathLike | Image.Image
Prediction = list[tuple[str, float]]


def sidecar(weights: Weights | Path | None) -> dict[str, Any]:
    """What a local weight file says about itself: its embedded card, updated by its JSON sidecar."""
    return cards.read_card(weights) if isinstance(weights, Path) else {}


def choose_model(model: str | None, weights: Any, default: str) -> tuple[str, dict[str, Any]]:
    """The architecture to build, and the card of the local weight file `weights` names ({} if none).

    `model=None`: the architecture the weights record (a file's card, a `Weights`, a manifest key), else
    `default`. A `model` that disagrees with a local file's card is refused with one clear error.
    """
    path = local_file(weights)
    card = cards.read_card(path) if path is not None else {}
    recorded = card.get("arch") if isinstance(card.get("arch"), str) else None
    if recorded is None and model is None:
        if isinstance(weights, Weights):
            recorded = weights.arch
        elif isinstance(weights, str) and path is None:
            known = manifest.load().weights.get(weights)
            recorded = known.arch if known is not None else None
    if model is None:
        return registry.canonical_name(recorded or default), card
    arch = registry.canonical_name(model)
    if path is not None and recorded and registry.canonical_name(recorded) != arch:
        raise InvalidArgumentError(
            f"{path} holds weights for {recorded} (its card says so), not {model}; "
            f"leave the model out to use {recorded}, or pass weights made for {model}"
        )
    return arch, card


def read_categories(categories: Sequence[str] | str | os.PathLike) -> list[str]:
    """Class names from a list, or from a UTF-8 text file with one name per line (as the book's
    imagenet_classes.txt).

    A file must be a regular file (a FIFO would block forever, /dev/zero never ends) of at most
    CATEGORIES_MAX bytes; anything else, and text that is not UTF-8, is one InvalidArgumentError.
    """
    if isinstance(categories, (str, os.PathLike)):
        lines = _read_text_file(Path(categories), "categories file", CATEGORIES_MAX).splitlines()
        return [line.strip() for line in lines if line.strip()]
    return [str(c) for c in categories]


# The book's imagenet_classes.txt is 10 KB; 21,843 ImageNet-21k names take about 400 KB.
CATEGORIES_MAX = 16 << 20


def _read_text_file(path: Path, what: str, limit: int) -> str:
    """The UTF-8 text of the regular file `path` (links followed), of at most `limit` bytes."""
    shown = show_path(path)
    try:  # a FIFO would block a plain read forever, /dev/zero never ends
        data = read_regular(path, limit, follow_links=True)
    except NotRegularFile:
        raise InvalidArgumentError(f"{what} {shown} is not a regular file") from None
    except FileTooLarge:
        raise InvalidArgumentError(f"{what} {shown} is larger than {limit >> 20} MiB") from None
    except OSError as e:
        raise InvalidArgumentError(f"{what} {shown}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(
            f"{what} {shown} is not UTF-8 text (byte {e.start}); save it as UTF-8"
        ) from None


def _inherited(weights: Weights | Path | None, arch: str | None, num_classes: int) -> Weights | None:
    """For a local file of `arch` whose head has as many classes as `arch`'s default weights: those weights,
    whose class names and preset the file inherits (a fine-tuned or re-saved ImageNet model)."""
    if not arch or not isinstance(weights, Path):
        return None
    default = manifest.load().default_for(arch)
    if default is None or not default.categories or len(default.categories) != num_classes:
        return None
    return default


def categories_for(
    weights: Weights | Path | None,
    num_classes: int,
    *,
    arch: str | None = None,
    card: dict[str, Any] | None = None,
    categories: Sequence[str] | str | os.PathLike | None = None,
) -> list[str]:
    """Class names, first found of: `categories`; the weights' own; a local file's card or sidecar; those
    of `arch`'s default weights when the head has as many classes; else "class N"."""
    if categories is not None:
        names = read_categories(categories)
        if len(names) != num_classes:
            raise InvalidArgumentError(
                f"categories: {len(names)} names given for a {num_classes}-class model; "
                "give one name per class, in the order of the model's outputs"
            )
        return names
    if isinstance(weights, Weights) and weights.categories:
        return list(weights.categories)
    names = (sidecar(weights) if card is None else card).get("categories")
    if isinstance(names, list) and len(names) == num_classes:
        return [str(n) for n in names]
    inherited = _inherited(weights, arch, num_classes)
    if inherited is not None:
        return list(inherited.categories)
    return [f"class {i}" for i in range(num_classes)]


def preset_for(
    weights: Weights | Path | None,
    num_classes: int,
    *,
    arch: str | None = None,
    card: dict[str, Any] | None = None,
) -> ImageClassification:
    """The preprocessing: the weights' preset; a local file's card's; that of `arch`'s default weights when
    the head has as many classes; else ImageNet's (resize 256, crop 224)."""
    if isinstance(weights, Weights):
        preset = weights.transforms()
    else:
        spec = (sidecar(weights) if card is None else card).get("transforms")
        # A card's preset that cannot be built is refused, not replaced by ImageNet's: silently different
        # preprocessing would give confident wrong labels.
        where = show_path(weights) if weights is not None else "the weights"
        preset = presets.build(spec, f"{where}: its card's transforms") if spec else None
        inherited = _inherited(weights, arch, num_classes) if preset is None else None
        if inherited is not None:
            preset = inherited.transforms()
    return preset if isinstance(preset, ImageClassification) else ImageClassification(crop_size=224)


def head_of(model: torch.nn.Module) -> torch.nn.Linear | torch.nn.Conv2d:
    """The classifier's head: its last Linear layer (ResNet/GoogLeNet `fc`, AlexNet `classifier[6]`, ViT
    `heads.head`, ...), or SqueezeNet's final 1x1 convolution where there is no Linear layer."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if linears:
        return linears[-1]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    if convs:  # SqueezeNet (also once BatchNorm folding has traced it into a GraphModule)
        return convs[-1]
    raise InvalidArgumentError(f"{type(model).__name__} has no Linear head: not a classifier")


def classes_of(model: torch.nn.Module) -> int:
    """How many classes the classifier's head outputs."""
    head = head_of(model)
    return head.out_features if isinstance(head, torch.nn.Linear) else head.out_channels


class Classifier:
    """A classifier with its preprocessing and labels, ready to run on batches of images."""

    def __init__(
        self,
        model: str | None = None,
        weights: Any = "DEFAULT",
        *,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        categories: Sequence[str] | str | os.PathLike | None = None,
        fuse: bool = True,
    ) -> None:
        """Build `model` with `weights` on `device` (see `classify` for the arguments).

        `precision="auto"` is bf16 where the device computes it natively (a CPU with AVX512_BF16 or AMX, a
        CUDA GPU with bf16), else fp32; the precision chosen is `self.precision`. `fuse=False` keeps the
        CPU fp32 model in eager PyTorch instead of oneDNN's fused convolutions (same results, slower).
        """
        self.device = resolve_device(device)
        self.precision = resolve_precision(self.device, precision)  # rejects an unknown one before any work
        warn_if_emulated(self.device, self.precision)
        arch, card = choose_model(model, weights, "resnet101")
        resolved = select_weights(arch, weights)
        model = for_inference(registry.get_model(arch, weights=resolved, device=self.device), self.precision)
        if self.device.type == "cpu":
            # On CPU, folded BatchNorms and channels-last memory (oneDNN's preferred layout) measure about
            # 25 % faster for ResNet-50 at fp32 as well.
            model = fold_batchnorm(model).to(memory_format=torch.channels_last)
        self.arch = arch
        num_classes = classes_of(model)
        self.transform = preset_for(resolved, num_classes, arch=arch, card=card)
        self.categories = categories_for(resolved, num_classes, arch=arch, card=card, categories=categories)
        self.fused = False
        if fuse and self.device.type == "cpu" and self.precision == "fp32":
            # Convolutions as oneDNN's fused kernels with weights packed once: resnet50 40.2 ms an image
            # against 50.3 for the eager model above (2 cores, side by side), same results (see fused_conv).
            # The eager model is then dropped: its weights would double the memory held.
            crop = self.transform.crop_size[0]
            fused = fused_conv.fuse_convolutions(model, [CPU_CHUNK, 3, crop, crop])
            if fused is not None:
                model, self.fused = fused, True
        self.model = model

    def prepare(self, image: ImageInput) -> torch.Tensor:
        """One image (a path or a PIL image) as the model's normalised input tensor (C, H, W)."""
        min_side = self.transform.resize_size[0]
        if isinstance(image, Image.Image):
            check_resizable(image.size, min_side, "the image")
            pil = to_rgb(image)
        else:
            pil = open_image(image, min_side=min_side)
        try:
            return self.transform(pil)
        except Exception as e:  # one image's oddity (a mode, a size) must not stop the batch
            raise prepare_error(image, e) from None

    @torch.inference_mode()
    def predict(self, batch: torch.Tensor, topk: int) -> list[Prediction]:
        """Top-k (label, percent) for a batch of prepared tensors, best first."""
        # Pinned memory makes the copy to a GPU asynchronous; on CPU there is nothing to copy.
        x = batch.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else batch
        if self.precision != "fp32" or self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        step = CPU_CHUNK if self.device.type == "cpu" else len(x)
        with autocast(self.device, self.precision):
            logits = torch.cat([self._forward(x[i : i + step]) for i in range(0, len(x), step)])
        percent = torch.softmax(logits.float(), dim=1) * 100
        values, indices = percent.topk(min(topk, percent.shape[1]), dim=1)
        return [
            [(self.categories[i], float(v)) for v, i in zip(vs, ix, strict=True)]
            for vs, ix in zip(values.tolist(), indices.tolist(), strict=True)
        ]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            return self.model(x)
        try:
            return self.model(x)
        except RuntimeError as e:  # oneDNN refused an input the probe did not show: eager from now on
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            warnings.warn(
                f"oneDNN's fused convolutions failed ({first_line}); running in eager PyTorch from now on",
                stacklevel=2,
            )
            fused_conv.unpack(self.model)
            self.fused = False
            return self.model(x)

    def run(
        self, images: Iterable[ImageInput], *, topk: int = 5, batch_size: int = 32
    ) -> Iterator[tuple[ImageInput, Prediction | ImageError]]:
        """Classify `images` in order, preparing the next ones while the model runs.

        Yields `(image, prediction)`, or `(image, ImageError)` for an input that could not be read.
        """
        if batch_size < 1 or topk < 1:
            raise InvalidArgumentError("batch_size and topk must be at least 1")
        batch: list[tuple[ImageInput, torch.Tensor]] = []
        for item, prepared in prefetch(self.prepare, images, ahead=2 * batch_size):
            if isinstance(prepared, ImageError):
                yield from self._flush(batch, topk)
                batch = []
                yield item, prepared
                continue
            if isinstance(prepared, Exception):
                raise prepared
            batch.append((item, prepared))
            if len(batch) == batch_size:
                yield from self._flush(batch, topk)
                batch = []
        yield from self._flush(batch, topk)

    def _flush(
        self, batch: Sequence[tuple[ImageInput, torch.Tensor]], topk: int
    ) -> Iterator[tuple[ImageInput, Prediction]]:
        if not batch:
            return
        predictions = self.predict(torch.stack([t for _, t in batch]), topk)
        yield from zip((item for item, _ in batch), predictions, strict=True)


def classify(
    images: ImageInput | Iterable[ImageInput],
    *,
    model: str | None = None,
    weights: Any = "DEFAULT",
    topk: int = 5,
    device: str | torch.device | None = None,
    batch_size: int = 32,
    precision: str = "fp32",
    categories: Sequence[str] | str | os.PathLike | None = None,
) -> list[Prediction]:
    """Top-k labels of each image, as `[(label, percent), ...]` best first (softmax x 100, as in the book).

    `images`: a path, a PIL image, or a list of them. `model`: None builds the architecture the weights
    record (a local file's card, a weights key), else resnet101. `weights`: "DEFAULT", a key or tag, a local
    file, or None. `categories`: class names (a list, or a text file with one per line) instead of the weights'
    own; a local file without names of its own gets those of the model's default weights when its head has as
    many classes. `precision`: "fp32" (the default: torchvision's numbers), "bf16" or "fp16" (autocast, with
    channels-last memory), or "auto": bf16 where the device computes it natively (a CPU with AVX512_BF16 or
    AMX, a CUDA GPU with bf16), else fp32. A file that cannot be read raises zoo.errors.ImageError naming it.
    """
    single = isinstance(images, (str, os.PathLike, Image.Image))
    items = [images] if single else list(images)
    classifier = Classifier(model, weights, device=device, precision=precision, categories=categories)
    results: list[Prediction] = []
    for _, outcome in classifier.run(items, topk=topk, batch_size=batch_size):
        if isinstance(outcome, ImageError):
            raise outcome
        results.append(outcome)
    return results
