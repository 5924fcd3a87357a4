"""Every other torchvision classifier, registered from torchvision's own registry through the fast path.

The seed families (AlexNet, ResNet, GoogLeNet) keep a module each because zoo adds something there; the
other classifiers of `torchvision.models.list_models(module=torchvision.models)` (73 in torchvision 0.29.1)
are registered here from `torchvision_catalogue.json`, which `scripts/generate_manifest.py` writes from
torchvision (family, summary, classifier heads) and a test keeps in sync. Listing reads the JSON only:
torchvision is imported on the first build, so `zoo list` stays light.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.nn as nn

from ..registry import is_registered, register_model
from ._builder import StateDict, build, head_classes, tensor_shape, torchvision_model

CATALOGUE = Path(__file__).with_name("torchvision_catalogue.json")
ARCHITECTURES: dict[str, dict[str, Any]] = json.loads(CATALOGUE.read_text(encoding="utf-8"))

ARGS_DOC = """
    Args:
        pretrained: load torchvision's first ImageNet weights (IMAGENET1K_V1 where there are such), as
            `pretrained=True` does in torchvision; weights="DEFAULT" picks the best ones.
        weights: None (random init), "DEFAULT", a key or tag such as "imagenet1k_v1", or a local file.
        progress: show a download progress bar on a terminal.
        device: "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); None keeps the model on the CPU.
        num_classes: with pretrained weights, replace {heads} by a fresh layer of this size.
    """


def _vit_image_size(state_dict: StateDict) -> dict[str, Any]:
    # A ViT's position embedding has one row per patch plus the class token: SWAG weights are 384 or 518
    # pixels where the V1 ones are 224, and a local file says which through this shape.
    pos = tensor_shape(state_dict, "encoder.pos_embedding", 3)
    proj = tensor_shape(state_dict, "conv_proj.weight", 4)
    if pos is None or proj is None:
        return {}
    side = math.isqrt(pos[1] - 1)
    return {"image_size": side * proj[-1]} if side * side == pos[1] - 1 else {}


def _inference(arch: str, heads: tuple[str, ...]) -> Callable[[StateDict], dict[str, Any]]:
    classes = head_classes(heads[0])
    family = ARCHITECTURES[arch]["family"]

    def infer(state_dict: StateDict) -> dict[str, Any]:
        found = classes(state_dict)
        if family == "vision_transformer":
            found.update(_vit_image_size(state_dict))
        if family == "inception":
            found["aux_logits"] = "AuxLogits.fc.weight" in state_dict
        return found

    return infer


def _drop_inception_aux(model: nn.Module) -> None:
    model.aux_logits = False
    model.AuxLogits = None


def _register(arch: str, info: dict[str, Any]) -> Callable[..., nn.Module]:
    heads = tuple(info["heads"])
    make = torchvision_model(arch)
    infer = _inference(arch, heads)

    def builder(
        pretrained: bool = False,
        *,
        weights: Any = None,
        progress: bool = True,
        device: Any = None,
        num_classes: int | None = None,
        **kwargs: Any,
    ) -> nn.Module:
        finish = None
        if info["family"] == "inception" and (weights is not None or pretrained):
            # As torchvision does for its weights: Inception's input transform, no random init, and the
            # auxiliary head kept unless aux_logits=False (it then follows the file and is dropped after).
            keep_aux = bool(kwargs.pop("aux_logits", True))
            kwargs = {"transform_input": True, "init_weights": False, **kwargs}
            finish = None if keep_aux else _drop_inception_aux
        return build(
            arch,
            make,
            weights=weights,
            pretrained=pretrained,
            progress=progress,
            device=device,
            kwargs=kwargs,
            num_classes=num_classes,
            head=heads,
            infer_kwargs=infer,
            finish=finish,
        )

    builder.__name__ = builder.__qualname__ = arch
    builder.__doc__ = info["summary"] + "\n" + ARGS_DOC.format(heads=" and ".join(f"`{h}`" for h in heads))
    return register_model()(builder)


# The seed families register first (zoo/models/__init__.py imports them before this module).
BUILDERS = {arch: _register(arch, info) for arch, info in ARCHITECTURES.items() if not is_registered(arch)}
globals().update(BUILDERS)
__all__ = sorted(BUILDERS)
