"""Describing images in words with the book's NeuralTalk2 (or the zoo's own captioner of synthetic scenes).

The book's pipeline (facts: shared/specs/neuraltalk2.md): each image at full resolution, EXIF orientation
applied and grayscale stacked to RGB, `/255` and ImageNet's mean and std; the encoder's fc features; a beam
search of 2 that returns the first caption to finish. Captions do not depend on the batch: images of one size
in a row are encoded together, decoding is per image.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from PIL import Image

from .. import registry
from ..devices import fold_batchnorm, for_inference, resolve_device
from ..errors import ImageError, InvalidArgumentError
from ..weights import presets
from ..weights.manifest import Weights
from ..weights.selection import select_weights
from .classification import choose_model
from .images import check_pixels, open_image, prepare_error, to_rgb
from .prefetch import prefetch

ImageInput = str | os.PathLike | Image.Image
RULES = ("first", "best")

# Nothing is resized, so activations grow with the photo: ResNet-101's first layers hold 64-256 channels of
# float32 per 2x2 or 4x4 pixels, about 1 GiB each at this limit (16 megapixels) against 120 MB for the
# book's 1500x1220 horse.
MAX_CAPTION_PIXELS = 1 << 24
# Images of one size in a row are encoded together up to this many (the scene captioner's 64x64 scenes).
BATCH = 16


class _Features(torch.nn.Module):
    """The encoder's `features` as a forward, so that torch.fx can fold its BatchNorms into the convolutions."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.features(x)


def check_decoding(beam_size: Any, rule: Any) -> None:
    """Refuse a beam size that is not a whole number >= 1, or a rule other than "first" and "best"."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise InvalidArgumentError(f"beam_size must be a whole number of at least 1, not {beam_size!r}")
    if rule not in RULES:
        raise InvalidArgumentError(f"rule must be one of {', '.join(RULES)}, not {rule!r}")


class Captioner:
    """A captioning model with its preprocessing and decoding settings, ready to describe images."""

    def __init__(
        self,
        model: str | None = None,
        weights: Any = "DEFAULT",
        *,
        device: str | torch.device | None = None,
        beam_size: int = 2,
        rule: str = "first",
        **model_kwargs: Any,
    ) -> None:
        check_decoding(beam_size, rule)  # before any file is fetched or read
        self.device = resolve_device(device)
        self.beam_size = beam_size
        self.rule = rule
        arch, _ = choose_model(model, weights, "neuraltalk2")
        resolved = select_weights(arch, weights)
        net = registry.get_model(arch, weights=resolved, device=self.device, **model_kwargs)
        if not all(hasattr(net, name) for name in ("features", "decode", "sentence")):
            raise InvalidArgumentError(f"{arch} is not a captioning model; use neuraltalk2")
        self.model = for_inference(net)
        self.encode: torch.nn.Module = _Features(net.encoder)
        if self.device.type == "cpu":
            # Folded BatchNorms and channels-last memory: the same CPU speed-ups as the classifier's.
            self.encode = fold_batchnorm(self.encode).to(memory_format=torch.channels_last)
        spec = resolved.transforms_spec if isinstance(resolved, Weights) else None
        self.transform = presets.build(spec, f"weights {arch}: transforms") if spec else presets.neuraltalk2()

    def prepare(self, image: ImageInput) -> torch.Tensor:
        """One image (a path or a PIL image) as the model's normalised input (3, H, W), at full resolution."""
        if isinstance(image, Image.Image):
            check_pixels(image.size, MAX_CAPTION_PIXELS, "the image")
            pil = to_rgb(image)
        else:
            pil = open_image(image, max_pixels=MAX_CAPTION_PIXELS, full_size=True)
        try:
            return self.transform(pil)
        except Exception as e:  # one image's oddity must not stop the others
            raise prepare_error(image, e) from None

    @torch.inference_mode()
    def describe(self, batch: torch.Tensor) -> list[str]:
        """Captions of a batch of prepared images of one size (N, 3, H, W)."""
        x = batch.to(self.device)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        feats = self.encode(x)
        tokens = self.model.decode(feats, self.beam_size, self.rule)
        return [self.model.sentence(t) for t in tokens]

    def run(self, images: Iterable[ImageInput]) -> Iterator[tuple[ImageInput, str | ImageError]]:
        """Caption `images` in order, reading the next ones while the model runs.

        Yields `(image, caption)`, or `(image, ImageError)` for an input that could not be read.
        """
        batch: list[tuple[ImageInput, torch.Tensor]] = []
        for item, prepared in prefetch(self.prepare, images, ahead=4):
            if isinstance(prepared, ImageError):
                yield from self._flush(batch)
                batch = []
                yield item, prepared
                continue
            if isinstance(prepared, Exception):
                raise prepared
            if batch and (prepared.shape != batch[0][1].shape or len(batch) == BATCH):
                yield from self._flush(batch)
                batch = []
            batch.append((item, prepared))
        yield from self._flush(batch)

    def _flush(self, batch: Sequence[tuple[ImageInput, torch.Tensor]]) -> Iterator[tuple[ImageInput, str]]:
        if batch:
            captions = self.describe(torch.stack([t for _, t in batch]))
            yield from zip((item for item, _ in batch), captions, strict=True)


def caption(
    images: ImageInput | Iterable[ImageInput],
    *,
    model: str | None = None,
    weights: Any = "DEFAULT",
    beam_size: int = 2,
    rule: str = "first",
    device: str | torch.device | None = None,
    **model_kwargs: Any,
) -> list[str]:
    """A caption for each image ("a person riding a horse on a beach"), as the book's NeuralTalk2 gives it.

    `images`: a path, a PIL image, or a list of them, used at full resolution. `weights`: "DEFAULT" (the
    book's files, fetched and verified), "shapes" (the zoo's own captioner of synthetic scenes, bundled), a
    key, or the book's decoder file with `infos=` and `encoder=` paths. `beam_size=1` is greedy decoding;
    `rule="first"` returns the first caption to finish, as the book's code does, `"best"` the best-scoring
    one. A file that cannot be read raises zoo.errors.ImageError naming it.
    """
    single = isinstance(images, (str, os.PathLike, Image.Image))
    items = [images] if single else list(images)
    captioner = Captioner(model, weights, device=device, beam_size=beam_size, rule=rule, **model_kwargs)
    results: list[str] = []
    for _, outcome in captioner.run(items):
        if isinstance(outcome, ImageError):
            raise outcome
        results.append(outcome)
    return results


# ---- the page `zoo caption --html OUT_DIR` writes, as the book's vis/ folder: vis.json, imgs/, a page ----

PAGE_FILES = ("index.html", "vis.json")
_STYLE = (
    "body{font-family:sans-serif;margin:2em;background:#fafafa}"
    "figure{display:inline-block;margin:1em;padding:.5em;background:#fff;border:1px solid #ddd;"
    "vertical-align:top;max-width:420px}"
    "img{max-width:400px;height:auto;display:block}"
    "figcaption{margin-top:.5em;font-size:1.1em}"
    ".source{color:#777;font-size:.8em;word-break:break-all}"
)


def page_targets(out_dir: str | os.PathLike, count: int) -> list[os.PathLike]:
    """Every file the page of `count` images writes in `out_dir` (the page, vis.json, imgs/1.png...)."""
    from pathlib import Path

    out = Path(out_dir)
    return [out / name for name in PAGE_FILES] + [out / "imgs" / f"{i}.png" for i in range(1, count + 1)]


def write_page(
    out_dir: str | os.PathLike,
    captioned: Sequence[tuple[int, ImageInput, str]],
    *,
    overwrite: bool = False,
) -> os.PathLike:
    """Write `out_dir/index.html` showing each image beside its caption, with the book's `vis.json`
    (`[{"image_id", "caption"}]`) and the pictures as `imgs/<id>.png` (upright RGB copies). Returns the page.

    `captioned`: (image id, image, caption). The page has no scripts and allows none (its Content Security
    Policy); captions and file names are escaped. Files are written atomically; without `overwrite`, an
    existing one is an InvalidArgumentError.
    """
    import html
    import json
    from pathlib import Path

    from .images import show_path
    from .outputs import make_output_dir, write_atomic

    out = make_output_dir(out_dir, "page folder")
    make_output_dir(out / "imgs", "page folder")
    figures = []
    for image_id, image, text in captioned:
        picture = (
            to_rgb(image)
            if isinstance(image, Image.Image)
            else open_image(image, max_pixels=MAX_CAPTION_PIXELS, full_size=True)
        )
        name = f"imgs/{image_id}.png"
        write_atomic(out / name, lambda tmp, im=picture: im.save(tmp, format="PNG"), overwrite=overwrite)
        source = "" if isinstance(image, Image.Image) else show_path(image)
        figures.append(
            f'<figure id="image-{image_id}"><img src="{name}" alt="{html.escape(text)}" '
            f'width="{picture.width}" height="{picture.height}">'
            f"<figcaption>image {image_id}: {html.escape(text)}</figcaption>"
            + (f'<div class="source">{html.escape(source)}</div>' if source else "")
            + "</figure>"
        )
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        # Nothing but the page's own pictures and style may load: no script, no request elsewhere.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self'; "
        "style-src 'unsafe-inline'\">\n"
        f"<title>zoo caption: {len(figures)} images</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        "<h1>Captions</h1>\n" + "\n".join(figures) + "\n</body>\n</html>\n"
    )
    vis = [{"image_id": str(i), "caption": text} for i, _, text in captioned]
    write_atomic(
        out / "vis.json",
        lambda tmp: Path(tmp).write_text(json.dumps(vis, indent=1, ensure_ascii=False), encoding="utf-8"),
        overwrite=overwrite,
    )
    write_atomic(
        out / "index.html", lambda tmp: Path(tmp).write_text(page, encoding="utf-8"), overwrite=overwrite
    )
    return out / "index.html"
