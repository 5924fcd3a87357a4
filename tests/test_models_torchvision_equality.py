"""Every torchvision classifier built by zoo's fast path equals torchvision's `model.load_state_dict(sd)`.

One random state dict per architecture (the shapes, dtypes and computed buffers of torchvision's own model,
values drawn at random) is saved to a file; zoo builds from that file on the meta device and assigns the
tensors, torchvision copies the same dict into a model built the usual way. Every parameter and buffer must
be bit for bit the same, and so must the output of one forward pass.
"""

from __future__ import annotations

import itertools
import zlib
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
from torchvision import models as tvm

import zoo

CATALOGUE = tvm.list_models(module=tvm)

# Measured on the 2-core EPYC: each of these takes over 10 s here (random values, a file of 0.5 to 2.5 GB,
# two builds and a forward pass), together about 3 minutes: `make test-all` runs them.
GIANTS = {
    "regnet_y_128gf",
    "vit_h_14",
    "vit_l_16",
    "vit_l_32",
    "regnet_y_32gf",
    "convnext_large",
}


def random_state_dict(model: nn.Module, seed: int) -> OrderedDict[str, torch.Tensor]:
    """The model's own keys, shapes and dtypes with new random values; integer buffers (step counters,
    Swin's and MaxViT's relative position indexes) are kept, since they are computed, not learned."""
    gen = torch.Generator().manual_seed(seed)
    source = model.state_dict()
    out = OrderedDict()
    out._metadata = source._metadata  # per-module versions: MNASNet's loader refuses a dict without them
    for key, value in source.items():
        if not value.is_floating_point():
            out[key] = value.clone()
        elif key.endswith("running_var"):
            out[key] = torch.rand(value.shape, generator=gen) + 0.5  # a variance stays positive
        else:
            out[key] = torch.randn(value.shape, generator=gen) * 0.02
    return out


def reference_model(arch: str, kwargs: dict) -> nn.Module:
    """torchvision's model with the arguments its builder uses for the default weights, initialised as usual
    (the random init is what zoo skips; load_state_dict then overwrites it)."""
    return tvm.get_model(arch, weights=None, **kwargs)


def input_for(arch: str, kwargs: dict) -> torch.Tensor:
    size = kwargs.get("image_size") or max(64, *zoo.get_weights(arch).meta["min_size"])
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "arch", [pytest.param(a, marks=pytest.mark.slow) if a in GIANTS else a for a in CATALOGUE]
)
def test_zoo_builds_each_torchvision_classifier_bit_for_bit_as_load_state_dict_does(arch, tmp_path):
    weights = zoo.get_weights(arch)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in weights.kwargs.items()}
    torch.manual_seed(0)
    reference = reference_model(arch, kwargs)
    state_dict = random_state_dict(reference, seed=zlib.crc32(arch.encode()))
    reference.load_state_dict(state_dict)
    path = tmp_path / weights.file_name
    torch.save(state_dict, path)
    del state_dict
    # GoogLeNet drops its auxiliary heads unless asked (as torchvision does); keep them to compare them too.
    model = zoo.get_model(arch, weights=path, **({"aux_logits": True} if arch == "googlenet" else {}))

    ours, theirs = dict(model.named_parameters()), dict(reference.named_parameters())
    assert ours.keys() == theirs.keys()
    ours_b, theirs_b = dict(model.named_buffers()), dict(reference.named_buffers())
    assert ours_b.keys() == theirs_b.keys()
    for name, theirs_t in itertools.chain(theirs.items(), theirs_b.items()):
        mine = ours.get(name, ours_b.get(name))
        assert mine.dtype == theirs_t.dtype and mine.shape == theirs_t.shape, name
        assert torch.equal(mine, theirs_t), name
    assert {n: p.requires_grad for n, p in ours.items()} == {n: p.requires_grad for n, p in theirs.items()}
    assert type(model) is type(reference) and model.training == reference.training

    x = input_for(arch, kwargs)
    with torch.inference_mode():
        got, want = model.eval()(x), reference.eval()(x)
    assert got.shape == (1, 1000) and torch.isfinite(want).all()
    assert torch.equal(got, want)
