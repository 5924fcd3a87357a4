"""zoo: a pretrained-model zoo and hub registry for PyTorch."""

__version__ = "0.1.0"  # before the imports: zoo.transfer reads it

from .check import check_repo
from .errors import ZooError
from .hub import help, list, load
from .manifest import Weights
from .publish import publish
from .registry import get_model, get_weights, list_models, list_weights
from .tasks import classify, generate, translate
from .transfer import download

__all__ = [
    "Weights",
    "ZooError",
    "check_repo",
    "classify",
    "download",
    "generate",
    "get_model",
    "get_weights",
    "help",
    "list",
    "list_models",
    "list_weights",
    "load",
    "publish",
    "translate",
]
