"""AlexNet: torchvision's architecture with the zoo's fast, verified weight loading."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..registry import register_model
from ._builder import build, head_classes, torchvision_model


@register_model()
def alexnet(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """AlexNet from "One weird trick for parallelizing convolutional neural networks".

    Args:
        pretrained: load torchvision's legacy ImageNet weights (IMAGENET1K_V1), as `pretrained=True` does in
            torchvision; weights="DEFAULT" picks the best ones.
        weights: None (random init), "DEFAULT", a key or tag such as "imagenet1k_v1", or a local file.
        progress: show a download progress bar on a terminal.
        device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); None keeps the model on the CPU, as torchvision does.
        num_classes: with pretrained weights, replace `classifier[6]` by a fresh layer of this size.
    """
    return build(
        "alexnet",
        torchvision_model("alexnet"),
        weights=weights,
        pretrained=pretrained,
        progress=progress,
        device=device,
        kwargs=kwargs,
        num_classes=num_classes,
        head="classifier.6",
        infer_kwargs=head_classes("classifier.6"),
    )
