"""GoogLeNet (Inception v1): torchvision's architecture with the zoo's fast, verified weight loading."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..registry import register_model
from ._builder import build, head_classes


def _drop_aux(model: nn.Module) -> None:
    if not model.aux_logits:
        return
    # torchvision's ImageNet weights carry the auxiliary heads, but inference models go without them.
    model.aux_logits = False
    model.aux1 = None
    model.aux2 = None


def _infer(state_dict: dict) -> dict[str, Any]:
    return {**head_classes("fc")(state_dict), "aux_logits": "aux1.fc2.weight" in state_dict}


def _googlenet(**kwargs: Any) -> nn.Module:
    from torchvision.models import GoogLeNet  # on first build only (see _builder.torchvision_model)

    return GoogLeNet(**{"init_weights": True, **kwargs})


@register_model()
def googlenet(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """GoogLeNet (Inception v1) from "Going Deeper with Convolutions".

    Args:
        pretrained: load torchvision's legacy ImageNet weights (IMAGENET1K_V1), as `pretrained=True` does in
            torchvision; weights="DEFAULT" picks the best ones.
        weights: None (random init), "DEFAULT", a key or tag such as "imagenet1k_v1", or a local file.
        progress: show a download progress bar on a terminal.
        device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); None keeps the model on the CPU, as torchvision does.
        num_classes: with pretrained weights, replace `fc` (and the auxiliary heads' `fc2`, when kept) by a
            fresh layer of this size.
    """
    keep_aux = bool(kwargs.get("aux_logits", False))
    if weights is not None or pretrained:
        # As torchvision does for its weights: Inception-style input transform, and no random init.
        # The aux heads follow the file; unless asked to keep them, they are dropped after loading.
        kwargs = {"transform_input": True, "init_weights": False, **kwargs}
        if not keep_aux:
            kwargs.pop("aux_logits", None)
    return build(
        "googlenet",
        _googlenet,
        weights=weights,
        pretrained=pretrained,
        progress=progress,
        device=device,
        kwargs=kwargs,
        num_classes=num_classes,
        head=("fc", "aux1.fc2", "aux2.fc2"),  # the auxiliary heads too, when kept
        infer_kwargs=_infer,
        finish=None if keep_aux else _drop_aux,
    )
