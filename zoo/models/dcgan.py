"""The GAN zoo's DCGAN generator, with the GAN zoo's `buildNoiseData` / `test` calls."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn as nn

from ..errors import WeightsMismatchError
from ..registry import register_model
from ._builder import build, tensor_shape


class DCGANGenerator(nn.Module):
    """DCGAN generator, state-dict compatible with the GAN zoo's `GNet`.

    Noise (N, latent_dim) -> `formatLayer` to 4x4 -> `depth` stride-2 upsamplings -> `main.outlayer` ->
    optional Tanh. With depth 3 the output is 64x64.
    """

    def __init__(
        self,
        latent_dim: int = 64,
        ngf: int = 64,
        depth: int = 3,
        out_channels: int = 3,
        tanh: bool = True,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        width = ngf * 2**depth
        self.formatLayer = nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False)
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            batchNorm0=nn.BatchNorm2d(width), relu0=nn.ReLU(True)
        )
        for i in range(1, depth + 1):
            layers[f"convTranspose{i}"] = nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False)
            layers[f"batchNorm{i}"] = nn.BatchNorm2d(width // 2)
            layers[f"relu{i}"] = nn.ReLU(True)
            width //= 2
        layers["outlayer"] = nn.ConvTranspose2d(ngf, out_channels, 4, 2, 1, bias=False)
        self.main = nn.Sequential(layers)
        self.activation = nn.Tanh() if tanh else nn.Identity()

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        x = self.formatLayer(noise.view(-1, noise.size(1), 1, 1))
        return self.activation(self.main(x))

    @property
    def device(self) -> torch.device:
        return self.formatLayer.weight.device

    def buildNoiseData(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, None]:  # noqa: N802
        """`n` latent vectors on the model's device, as the GAN zoo returns them: (noise, None)."""
        noise = torch.randn(n, self.latent_dim, generator=generator)
        return noise.to(self.device), None

    @torch.no_grad()
    def test(self, noise: torch.Tensor, getAvG: bool = False, toCPU: bool = True) -> torch.Tensor:  # noqa: N803
        """Images in [-1, 1] generated from `noise`, as the GAN zoo's `test` (no averaged generator here)."""
        out = self(noise.to(self.device))
        return out.cpu() if toCPU else out


def _infer(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    # ConvTranspose2d weights are (in, out, kH, kW): formatLayer (latent_dim, ngf * 2**depth, 4, 4),
    # outlayer (ngf, out_channels, 4, 4); the upsamplings are main.convTranspose1..depth.
    fmt = tensor_shape(state_dict, "formatLayer.weight", 4)
    out = tensor_shape(state_dict, "main.outlayer.weight", 4)
    if fmt is None or out is None:
        return {}
    depth = 0
    while f"main.convTranspose{depth + 1}.weight" in state_dict:
        depth += 1
    ngf = out[0]
    # The width doubles at every level below the top, so the file's own widths must agree; checked here,
    # before a hostile depth (60 levels of tiny tensors) could ask for a 2**60-wide layer.
    if fmt[1] != ngf * 2**depth:
        raise WeightsMismatchError(
            f"formatLayer.weight has {fmt[1]} output channels, but main.outlayer.weight's {ngf} input "
            f"channels and {depth} main.convTranspose layers need {ngf} * 2**{depth}"
        )
    return {"latent_dim": fmt[0], "ngf": ngf, "out_channels": out[1], "depth": depth}


@register_model()
def dcgan(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    useGPU: bool | None = None,  # noqa: N803
    **kwargs: Any,
) -> nn.Module:
    """DCGAN generator of the GAN zoo (depth 3, ngf 64, 64x64 output), with `buildNoiseData` and `test`.

    Usage as in the Torch Hub tutorial:
        noise, _ = model.buildNoiseData(8); images = model.test(noise)   # (8, 3, 64, 64) in [-1, 1]

    Args:
        pretrained: load the default weights.
        weights: None (random init), "DEFAULT", a key or tag, or a local file.
        progress: show a download progress bar on a terminal.
        device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); None keeps the model on the CPU, as torchvision does.
        useGPU: the GAN zoo's spelling of the device (True: CUDA when available, False: "cpu"), for the
            tutorial's code.
        **kwargs: latent_dim (64), ngf (64), depth (3), out_channels (3), tanh (True).
    """
    if useGPU is not None and device is None:
        device = "auto" if useGPU else "cpu"  # the GAN zoo falls back to the CPU without CUDA
    return build(
        "dcgan",
        DCGANGenerator,
        weights=weights,
        pretrained=pretrained,
        progress=progress,
        device=device,
        kwargs=kwargs,
        infer_kwargs=_infer,
    )
