"""Images from noise with a GAN generator (the GAN zoo's DCGAN or the project's own)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torchvision.utils import save_image

from .. import registry
from ..devices import for_inference, resolve_device
from ..errors import InvalidArgumentError
from .classification import choose_model


@torch.inference_mode()
def generate(
    n: int,
    *,
    model: str | None = None,
    weights: Any = "DEFAULT",
    device: str | torch.device | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """`n` generated images as a (n, C, H, W) tensor in [0, 1], on the CPU.

    The same seed gives the same images. `model=None` builds the architecture a local weight file's card records, else the DCGAN.
    """
    if n < 1:
        raise InvalidArgumentError(f"n must be at least 1, not {n}")
    target = resolve_device(device)
    arch, _ = choose_model(model, weights, "dcgan")  # None: the weight file's card, else dcgan
    gan = for_inference(registry.get_model(arch, weights=weights, device=target))
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    noise, _ = gan.buildNoiseData(n, generator=generator)
    images = gan.test(noise, toCPU=True)
    return ((images.float() + 1) / 2).clamp(0, 1)


def save_grid(images: torch.Tensor, path: str | os.PathLike, *, nrow: int = 8) -> None:
    """Save images in [0, 1] as one grid picture (torchvision's `save_image`), `nrow` per row."""
    save_image(images, os.fspath(path), nrow=nrow, padding=2)
