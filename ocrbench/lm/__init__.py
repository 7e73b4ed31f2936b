"""Character language model for shallow fusion in beam search: model, training text, training and caching."""

from .model import NEVER, CharLM, check_lm_charset
from .train import (
    default_lm_path,
    evaluate_lm,
    get_lm,
    held_out_texts,
    load_lm,
    save_lm,
    summary,
    train_and_save,
    train_lm,
)

__all__ = ["NEVER", "CharLM", "check_lm_charset", "default_lm_path", "evaluate_lm", "get_lm", "held_out_texts",
           "load_lm", "save_lm", "summary", "train_and_save", "train_lm"]
