"""The book's workflows on top of the models: classify, translate, generate, fine-tune."""

from .classification import Classifier, classify
from .finetuning import finetune
from .generation import generate, save_grid
from .translation import Translator, translate

__all__ = ["Classifier", "Translator", "classify", "finetune", "generate", "save_grid", "translate"]
