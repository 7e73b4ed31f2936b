"""Data: charset, line/page datasets and their registry, batching."""

from .charset import IAM_CHARS, Charset, CharsetError, nfc
from .registry import DataConfig, create_dataset, dataset_info, list_datasets, register_dataset
from .samples import LineBatch, LineCollator, LineSample

__all__ = ["IAM_CHARS", "Charset", "CharsetError", "DataConfig", "LineBatch", "LineCollator", "LineSample",
           "create_dataset", "dataset_info", "list_datasets", "nfc", "register_dataset"]
