"""Torch Hub entry points of zoo: `torch.hub.load("<owner>/zoo", "resnet101", pretrained=True)`."""

dependencies = ["torch", "torchvision", "safetensors", "platformdirs"]

from zoo.models import (  # noqa: E402
    alexnet,
    custom_model,
    cyclegan,
    dcgan,
    googlenet,
    mlp,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)

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
