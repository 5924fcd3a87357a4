"""Images from noise with a GAN generator (the GAN zoo's DCGAN or the project's own)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

from .. import registry
from ..devices import for_inference, resolve_device
from ..errors import InvalidArgumentError
from .classification import choose_model
from .outputs import image_format, refuse_existing, write_atomic

# One call's images are held in memory at once (with the generator's activations for all of them): 10,000
# 64x64 images are 0.5 GB of output; a mistyped -n 10000000 would otherwise end in the kernel's OOM killer.
MAX_IMAGES = 10_000
# Images generated together. Fixed, so that each image is computed in the same batch whether one process makes
# the whole grid or many make a unit each (a convolution's float sums may depend on the batch).
UNIT = 16


@torch.inference_mode()
def generate(
    n: int,
    *,
    model: str | None = None,
    weights: Any = "DEFAULT",
    device: str | torch.device | None = None,
    seed: int | None = None,
    units: Iterable[int] | None = None,
) -> Any:
    """`n` generated images as a (n, C, H, W) tensor in [0, 1], on the CPU.

    The same seed gives the same images. They are generated in units of UNIT (`units`: only those, as a dict
    unit -> images, for one process of many), so a unit's bits do not depend on how many processes share
    the work. `model=None` builds the architecture a local weight file's card records, else the DCGAN.
    """
    if not 1 <= n <= MAX_IMAGES:
        raise InvalidArgumentError(
            f"n must be at least 1 and at most {MAX_IMAGES} (call again for more), not {n}"
        )
    if seed is not None and not -(2**63) <= seed < 2**64:
        raise InvalidArgumentError(f"seed must fit in 64 bits, not {seed}")
    target = resolve_device(device)
    arch, _ = choose_model(model, weights, "dcgan")  # None: the weight file's card, else dcgan
    gan = for_inference(registry.get_model(arch, weights=weights, device=target))
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    noise, _ = gan.buildNoiseData(n, generator=generator)
    wanted = range(units_of(n)) if units is None else units
    done = {u: _to_unit_range(gan.test(noise[u * UNIT : (u + 1) * UNIT], toCPU=True)) for u in wanted}
    return done if units is not None else torch.cat([done[u] for u in range(units_of(n))])


def units_of(n: int) -> int:
    """How many units of UNIT images `n` images make."""
    return -(-n // UNIT)


def _to_unit_range(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() + 1) / 2).clamp(0, 1)


def save_grid(
    images: torch.Tensor, path: str | os.PathLike, *, nrow: int = 8, overwrite: bool = False
) -> None:
    """Save images in [0, 1] as one grid picture (torchvision's `save_image`), `nrow` per row.

    The file is written atomically; an existing `path` is kept (InvalidArgumentError) unless `overwrite`.
    """
    if nrow < 1:
        raise InvalidArgumentError(f"nrow must be at least 1, not {nrow}")
    fmt = image_format(path)
    refuse_existing(Path(path), overwrite)
    write_atomic(
        path, lambda tmp: save_image(images, tmp, nrow=nrow, padding=2, format=fmt), overwrite=overwrite
    )
