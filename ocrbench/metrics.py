"""Recognition metrics: corpus-level character and word error rates.

Both hypothesis and reference are NFC-normalised and their whitespace collapsed before scoring (see
:func:`ocrbench.data.charset.nfc`); nothing is lower-cased and punctuation is kept. CER is the sum of
character edit distances over the sum of reference lengths (not a mean of per-line rates, which weights
short lines more and is larger); WER likewise over whitespace-separated words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import editdistance

from .data.charset import nfc


@dataclass
class ErrorCounts:
    """Edit-distance sums that add up across batches; rates are derived at the end."""

    char_edits: int = 0
    chars: int = 0
    word_edits: int = 0
    words: int = 0
    lines: int = 0

    def update(self, hypotheses: Iterable[str], references: Iterable[str]) -> ErrorCounts:
        for hyp, ref in zip(hypotheses, references, strict=True):
            hyp, ref = nfc(hyp), nfc(ref)
            self.char_edits += editdistance.eval(hyp, ref)
            self.chars += len(ref)
            hw, rw = hyp.split(), ref.split()
            self.word_edits += editdistance.eval(hw, rw)
            self.words += len(rw)
            self.lines += 1
        return self

    @property
    def cer(self) -> float:
        return _rate(self.char_edits, self.chars)

    @property
    def wer(self) -> float:
        return _rate(self.word_edits, self.words)


def _rate(edits: int, total: int) -> float:
    # An empty reference corpus: 0 if the hypotheses are empty too, else every hypothesis symbol is an error.
    if total == 0:
        return 0.0 if edits == 0 else float("inf")
    return edits / total


def cer(hypotheses: Iterable[str], references: Iterable[str]) -> float:
    """Corpus-level character error rate."""
    return ErrorCounts().update(hypotheses, references).cer


def wer(hypotheses: Iterable[str], references: Iterable[str]) -> float:
    """Corpus-level word error rate."""
    return ErrorCounts().update(hypotheses, references).wer
