"""ResNet-18/34/50/101/152: torchvision's architectures with the zoo's fast, verified weight loading."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..registry import register_model
from ._builder import build, head_classes, torchvision_model


def _resnet(arch: str, weights: Any, pretrained: bool, progress: bool, device: Any, num_classes, kwargs):
    return build(
        arch,
        torchvision_model(arch),
        weights=weights,
        pretrained=pretrained,
        progress=progress,
        device=device,
        kwargs=kwargs,
        num_classes=num_classes,
        head="fc",
        infer_kwargs=head_classes("fc"),
    )


@register_model()
def resnet18(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-18 from "Deep Residual Learning for Image Recognition".

    Args:
        pretrained: load torchvision's legacy ImageNet weights (IMAGENET1K_V1), as `pretrained=True` does in
            torchvision; weights="DEFAULT" picks the best ones.
        weights: None (random init), "DEFAULT", a key or tag such as "imagenet1k_v1", or a local file.
        progress: show a download progress bar on a terminal.
        device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); None keeps the model on the CPU, as torchvision does.
        num_classes: with pretrained weights, replace `fc` by a fresh layer of this size.
    """
    return _resnet("resnet18", weights, pretrained, progress, device, num_classes, kwargs)


@register_model()
def resnet34(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-34 from "Deep Residual Learning for Image Recognition".

    Args: as for `resnet18`.
    """
    return _resnet("resnet34", weights, pretrained, progress, device, num_classes, kwargs)


@register_model()
def resnet50(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-50 from "Deep Residual Learning for Image Recognition" (V1 and V2 ImageNet weights).

    Args: as for `resnet18`.
    """
    return _resnet("resnet50", weights, pretrained, progress, device, num_classes, kwargs)


@register_model()
def resnet101(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-101 from "Deep Residual Learning for Image Recognition", the book's image classifier.

    Args: as for `resnet18`.
    """
    return _resnet("resnet101", weights, pretrained, progress, device, num_classes, kwargs)


@register_model()
def resnet152(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """ResNet-152 from "Deep Residual Learning for Image Recognition".

    Args: as for `resnet18`.
    """
    return _resnet("resnet152", weights, pretrained, progress, device, num_classes, kwargs)
