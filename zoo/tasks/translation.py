"""Image-to-image translation with the book's CycleGAN (horse to zebra)."""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from PIL import Image
from torchvision.transforms.functional import to_pil_image

from .. import registry
from ..devices import for_inference, resolve_device
from ..errors import InvalidArgumentError
from ..weights import presets
from .classification import choose_model
from .images import check_resizable, open_image, prepare_error, to_rgb

# The generator's activations grow with the whole image (nothing is cropped): 64 channels of float32 per
# pixel in its first layers, about 1 GiB at this limit (2048x2048), against 20 MiB for the book's 316x256.
MAX_TRANSLATE_PIXELS = 1 << 22


class Translator:
    """A CycleGAN generator with the book's pre- and post-processing."""

    def __init__(
        self,
        model: str | None = None,
        weights: Any = "horse2zebra",
        *,
        device: str | torch.device | None = None,
        size: int = 256,
    ) -> None:
        if size < 16:  # the generator's reflection padding and two downsamplings need room
            raise InvalidArgumentError(f"size must be at least 16 pixels, not {size}")
        if size * size > MAX_TRANSLATE_PIXELS:
            raise InvalidArgumentError(
                f"size must be at most {math.isqrt(MAX_TRANSLATE_PIXELS)} pixels, not {size} "
                "(the generator keeps every pixel in memory)"
            )
        self.device = resolve_device(device)
        self.size = size
        arch, _ = choose_model(model, weights, "cyclegan")  # None: the weight file's card, else cyclegan
        self.model = for_inference(registry.get_model(arch, weights=weights, device=self.device))
        self.transform = presets.cyclegan(size)

    @torch.inference_mode()
    def __call__(self, image: str | os.PathLike | Image.Image) -> Image.Image:
        """Translate one image (a path or a PIL image); the result's shorter side is about `size`."""
        if isinstance(image, Image.Image):
            check_resizable(image.size, self.size, "the image", max_pixels=MAX_TRANSLATE_PIXELS)
            pil = to_rgb(image)
        else:
            pil = open_image(image, min_side=self.size, max_pixels=MAX_TRANSLATE_PIXELS)
        try:
            x = self.transform(pil).unsqueeze(0).to(self.device)
        except Exception as e:
            raise prepare_error(image, e) from None
        y = self.model(x)
        return to_pil_image(presets.cyclegan_output(y[0]).float().cpu())


def translate(
    image: str | os.PathLike | Image.Image,
    *,
    model: str | None = None,
    weights: Any = "horse2zebra",
    device: str | torch.device | None = None,
    size: int = 256,
) -> Image.Image:
    """The book's CycleGAN pipeline: shorter side to `size`, generator, `(y + 1) / 2`, back to an image.

    `model=None` builds the architecture a local weight file's card records, else the cyclegan.
    A 1500x1220 photo gives a 316x256 image (the generator rounds odd sizes up).
    """
    return Translator(model, weights, device=device, size=size)(image)
