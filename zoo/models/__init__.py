"""The zoo's model families, one module each; importing them registers their builders."""

from .alexnet import alexnet
from .cyclegan import cyclegan
from .dcgan import dcgan
from .googlenet import googlenet
from .mlp import mlp
from .resnet import resnet18, resnet34, resnet50, resnet101, resnet152

custom_model = mlp

__all__ = [
    "alexnet",
    "custom_model",
    "cyclegan",
    "dcgan",
    "googlenet",
    "mlp",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]
