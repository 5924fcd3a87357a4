"""The Torch Hub tutorial's MLP (published there as `custom_model`)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn as nn

from ..registry import register_model
from ._builder import build, tensor_shape


def make_mlp(in_features: int = 4, hidden: int = 8, num_classes: int = 3) -> nn.Sequential:
    """Sequential(hidden_layer_1=Linear, activation_1=ReLU, output_layer=Linear), the tutorial's layout."""
    return nn.Sequential(
        OrderedDict(
            hidden_layer_1=nn.Linear(in_features, hidden),
            activation_1=nn.ReLU(),
            output_layer=nn.Linear(hidden, num_classes),
        )
    )


def _infer(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    # Linear weights are (out, in); a file whose two layers disagree on `hidden` is named by the fit check.
    first = tensor_shape(state_dict, "hidden_layer_1.weight", 2)
    last = tensor_shape(state_dict, "output_layer.weight", 2)
    if first is None or last is None:
        return {}
    return {"in_features": first[1], "hidden": first[0], "num_classes": last[0]}


@register_model("custom_model")
def mlp(
    pretrained: bool = False,
    *,
    weights: Any = None,
    progress: bool = True,
    device: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """The Torch Hub tutorial's MLP: Linear(4, 8) -> ReLU -> Linear(8, 3) on 4-feature blobs.

    Args:
        pretrained: load the default weights.
        weights: None (random init), "DEFAULT", a key or tag, or a local file.
        progress: show a download progress bar on a terminal.
        device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); None keeps the model on the CPU, as torchvision does.
        **kwargs: in_features (4), hidden (8), num_classes (3).
    """
    return build(
        "mlp",
        make_mlp,
        weights=weights,
        pretrained=pretrained,
        progress=progress,
        device=device,
        kwargs=kwargs,
        infer_kwargs=_infer,
    )
