"""The CycleGAN ResNet generator of "Deep Learning with PyTorch" (horse2zebra)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..registry import register_model
from ._builder import build, tensor_shape


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convs with instance norm, added to the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        # Index layout (pad, conv, norm, relu, pad, conv, norm) fixes the checkpoint keys conv_block.{1,5}.
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=True),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=True),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResNetGenerator(nn.Module):
    """Image-to-image generator: 7x7 stem, two stride-2 downsamplings, residual blocks, two upsamplings."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, bias=True),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        width = ngf
        for _ in range(2):
            layers += [
                nn.Conv2d(width, width * 2, kernel_size=3, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(width * 2),
                nn.ReLU(True),
            ]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(
                    width, width // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=True
                ),
                nn.InstanceNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _drop_norm_stats(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Checkpoints from torch < 0.4 recorded running stats for InstanceNorm, which has none now.
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return {k: v for k, v in state_dict.items() if not k.endswith(stats)}


def _infer(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    # Conv2d weights are (out, in, kH, kW): the 7x7 stem (ngf, input_nc, ...), the 7x7 output (output_nc, ngf, ...).
    stem = tensor_shape(state_dict, "model.1.weight", 4)
    out = tensor_shape(state_dict, "model.26.weight", 4)
    if stem is None or out is None:
        return {}
    return {"ngf": stem[0], "input_nc": stem[1], "output_nc": out[0]}


@register_model()
def cyclegan(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """CycleGAN ResNet generator (9 blocks, ngf 64) from "Deep Learning with PyTorch", chapter 2.

    Input: images in [0, 1] of shape (N, 3, H, W); output in [-1, 1]: map back with (y + 1) / 2.
    Weights: "horse2zebra" (the book's horse2zebra_0.4.0.pth).

    Args:
        pretrained: load the default weights (horse2zebra).
        weights: None (random init), "DEFAULT", a key or tag, or a local file.
        progress: show a download progress bar on a terminal.
        device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); None keeps the model on the CPU, as torchvision does.
        **kwargs: input_nc, output_nc, ngf, n_blocks.
    """
    return build(
        "cyclegan",
        ResNetGenerator,
        weights=weights,
        pretrained=pretrained,
        progress=progress,
        device=device,
        kwargs=kwargs,
        infer_kwargs=_infer,
        prepare=_drop_norm_stats,
    )
