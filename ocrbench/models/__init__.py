"""Model registry and the reference models. Importing this package registers every model in it."""

# Each model module registers its models when imported: add a new model's module to this line.
from . import attention_lm, cnn_transformer, crnn, line_cnn, resnet_ctc, yolo_lines  # noqa: F401
from .base import CTCRecognizer, ModelInfo, Recognizer
from .registry import create_model, list_models, model_task, register_model

__all__ = ["CTCRecognizer", "ModelInfo", "Recognizer", "create_model", "list_models", "model_task",
           "register_model"]
