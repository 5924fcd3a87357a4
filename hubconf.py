"""Torch Hub entry points of zoo: `torch.hub.load("<owner>/zoo", "resnet101", pretrained=True)`."""

# Every module that importing zoo needs (tests/test_project_package.py checks it against pyproject.toml), so
# a torch.hub user without one gets torch.hub's one-line message: pip install zoo-hub brings them all.
dependencies = [
    "torch",
    "torchvision",
    "PIL",
    "numpy",
    "requests",
    "urllib3",
    "platformdirs",
    "filelock",
    "tqdm",
    "safetensors",
]

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
