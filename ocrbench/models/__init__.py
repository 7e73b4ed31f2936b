"""Model registry and the reference models.

Adding a model is one file: put it in this folder (or in your own package, under the entry-point group
``ocrbench.models``) and decorate its entry functions with ``@register_model``; nothing else is edited. Every
public module of this folder is imported at the end of this file, after the public names below exist, so a model
module may start with ``from ocrbench.models import register_model``.
"""

from .._plugins import import_modules
from ._base import CTCRecognizer, ModelInfo, Recognizer
from ._registry import (
    create_model,
    list_models,
    model_description,
    model_task,
    model_version,
    register_model,
)

__all__ = ["CTCRecognizer", "ModelInfo", "Recognizer", "create_model", "list_models", "model_task",
           "model_description", "model_version", "register_model"]

# Last: model modules import the names above from this (then partially initialised) package.
MODEL_MODULES = import_modules(__name__, __path__)
