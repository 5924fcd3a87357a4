"""zoo: a pretrained-model zoo and hub registry for PyTorch."""

from .errors import ZooError
from .hub import help, list, load
from .manifest import Weights
from .registry import get_model, get_weights, list_models, list_weights

__version__ = "0.1.0"

__all__ = [
    "Weights",
    "ZooError",
    "get_model",
    "get_weights",
    "help",
    "list",
    "list_models",
    "list_weights",
    "load",
]
