"""Model registry and the reference models. Importing this package registers every model in it."""

from . import crnn, line_cnn, resnet_ctc  # noqa: F401  (each module registers its models)
from . import yolo_lines  # noqa: F401  (text-line detector)
from . import attention_lm, cnn_transformer  # noqa: F401  (sequence-to-sequence recognizers)
from .base import CTCRecognizer, ModelInfo, Recognizer
from .registry import create_model, list_models, model_task, register_model

__all__ = ["CTCRecognizer", "ModelInfo", "Recognizer", "create_model", "list_models", "model_task",
           "register_model"]
