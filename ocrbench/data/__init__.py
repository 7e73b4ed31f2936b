"""Data core: charset, line/page samples and batches, the dataset registry's mechanism, cache, integrity checks.

The datasets themselves, and the lookups that find them (``create_dataset``, ``list_datasets``...), are in
:mod:`ocrbench.datasets`; nothing here imports them.
"""

from .charset import IAM_CHARS, Charset, CharsetError, nfc
from .registry import register_dataset
from .samples import LineBatch, LineCollator, LineSample

__all__ = ["IAM_CHARS", "Charset", "CharsetError", "LineBatch", "LineCollator", "LineSample", "nfc",
           "register_dataset"]
