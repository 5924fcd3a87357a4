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

# Every builder of zoo.models (the seed families and the whole torchvision catalogue) is an entry point.
from zoo.models import *  # noqa: E402, F403
from zoo.models import __all__  # noqa: E402, F401
