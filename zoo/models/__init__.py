"""The zoo's model families, one module each; importing them registers their builders.

The seed families come first; `torchvision_catalogue` then registers every other torchvision classifier.
"""

from .alexnet import alexnet
from .cyclegan import cyclegan
from .dcgan import dcgan
from .googlenet import googlenet
from .mlp import mlp
from .neuraltalk2 import neuraltalk2
from .resnet import resnet18, resnet34, resnet50, resnet101, resnet152
from .torchvision_catalogue import BUILDERS as _CATALOGUE

custom_model = mlp
globals().update(
    _CATALOGUE
)  # convnext_tiny, vit_b_16, ...: one builder each, made from torchvision's registry

__all__ = [
    "alexnet",
    "custom_model",
    "cyclegan",
    "dcgan",
    "googlenet",
    "mlp",
    "neuraltalk2",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]
__all__ += sorted(_CATALOGUE)
