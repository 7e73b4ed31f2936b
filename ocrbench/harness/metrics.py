"""Recognition metrics: corpus-level character and word error rates; detection metrics (P/R/F1, AP) below.

Both hypothesis and reference are NFC-normalised and their whitespace collapsed before scoring (see
:func:`ocrbench.data.charset.nfc`); nothing is lower-cased and punctuation is kept. CER is the sum of
character edit distances over the sum of reference lengths (not a mean of per-line rates, which weights
short lines more and is larger); WER likewise over whitespace-separated words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import editdistance
import numpy as np

from ..data.charset import nfc


@dataclass
class ErrorCounts:
    """Edit-distance sums that add up across batches; rates are derived at the end."""

    char_edits: int = 0
    chars: int = 0
    word_edits: int = 0
    words: int = 0
    lines: int = 0

    @classmethod
    def of_line(cls, hypothesis: str, reference: str) -> ErrorCounts:
        hyp, ref = nfc(hypothesis), nfc(reference)
        hw, rw = hyp.split(), ref.split()
        return cls(editdistance.eval(hyp, ref), len(ref), editdistance.eval(hw, rw), len(rw), 1)

    def add(self, other: ErrorCounts) -> ErrorCounts:
        self.char_edits += other.char_edits
        self.chars += other.chars
        self.word_edits += other.word_edits
        self.words += other.words
        self.lines += other.lines
        return self

    def update(self, hypotheses: Iterable[str], references: Iterable[str]) -> ErrorCounts:
        for hyp, ref in zip(hypotheses, references, strict=True):
            self.add(ErrorCounts.of_line(hyp, ref))
        return self

    def as_list(self) -> list[int]:
        """``[char_edits, chars, word_edits, words]``: a record's compact form (``doc_errors``)."""
        return [self.char_edits, self.chars, self.word_edits, self.words]

    @property
    def cer(self) -> float:
        return _rate(self.char_edits, self.chars)

    @property
    def wer(self) -> float:
        return _rate(self.word_edits, self.words)


@dataclass
class DocumentErrorCounts:
    """Corpus counts and the same counts per document, from one edit distance per line. The per-document
    counts are what a bootstrap over documents resamples (lines of one page share a writer, ink and scan, so
    they are not independent draws: resampling lines would make the interval too narrow)."""

    total: ErrorCounts = field(default_factory=ErrorCounts)
    documents: dict[str, ErrorCounts] = field(default_factory=dict)

    def update(self, hypotheses: Iterable[str], references: Iterable[str],
               documents: Iterable[str | None]) -> DocumentErrorCounts:
        """Add lines; a line whose document is None counts in the corpus total only."""
        for hyp, ref, doc in zip(hypotheses, references, documents, strict=True):
            line = ErrorCounts.of_line(hyp, ref)
            self.total.add(line)
            if doc is not None:
                self.documents.setdefault(doc, ErrorCounts()).add(line)
        return self

    def as_lists(self) -> dict[str, list[int]]:
        return {doc: counts.as_list() for doc, counts in self.documents.items()}


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


# ---- detection ----------------------------------------------------------------------------------------------
# Text-line detection is scored as in COCO (Lin et al. 2014; pycocotools' COCOeval), one category, no
# "crowd" regions and no cap on detections per image: detections are matched greedily in descending score to
# the unmatched ground-truth box of highest IoU >= the threshold; AP is the 101-point interpolated area under
# the precision envelope, pooled over all pages; AP@[.5:.95] averages it over IoU 0.50, 0.55, ..., 0.95.

COCO_IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(a, b) -> np.ndarray:
    """IoU matrix (N, M) of boxes ``a`` (N, 4) and ``b`` (M, 4), both ``x0, y0, x1, y1``."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_detections(boxes, scores, gt_boxes, iou_threshold: float = 0.5) -> np.ndarray:
    """True positives (bool, aligned with ``boxes``): greedy in descending score, each detection takes the
    unmatched ground-truth box of highest IoU, if that IoU is >= ``iou_threshold``; the rest are false."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    iou = box_iou(boxes, gt_boxes)
    tp = np.zeros(len(scores), dtype=bool)
    taken = np.zeros(iou.shape[1], dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        if iou.shape[1] == 0:
            break
        candidates = np.where(taken, -1.0, iou[i])
        j = int(candidates.argmax())
        if candidates[j] >= iou_threshold - 1e-12:
            tp[i], taken[j] = True, True
    return tp


def average_precision(scores, tp, n_gt: int) -> float:
    """COCO 101-point interpolated AP of pooled detections (``scores``, ``tp`` flags) against ``n_gt``
    ground-truth boxes; NaN when there is no ground truth."""
    if n_gt == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.asarray(tp, dtype=bool)[order]
    if hits.size == 0:
        return 0.0
    tps = np.cumsum(hits)
    recall = tps / n_gt
    precision = tps / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or beyond
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    return float(np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0).mean())


@dataclass
class DetectionCounts:
    """Detections of many pages, pooled; metrics are derived at the end (like :class:`ErrorCounts`)."""

    iou_thresholds: tuple[float, ...] = COCO_IOUS
    scores: list = field(default_factory=list)  # one float array per page
    tps: list = field(default_factory=list)  # one bool array (detections, thresholds) per page
    n_gt: int = 0
    pages: int = 0

    def update(self, boxes, scores, gt_boxes) -> DetectionCounts:
        """Add one page: detections ``boxes`` (N, 4) with ``scores`` (N,), ground truth ``gt_boxes`` (M, 4)."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        flags = [match_detections(boxes, scores, gt_boxes, t) for t in self.iou_thresholds]
        self.scores.append(scores)
        self.tps.append(np.stack(flags, axis=1) if flags else np.zeros((len(scores), 0), bool))
        self.n_gt += len(gt_boxes)
        self.pages += 1
        return self

    def _pooled(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.scores:
            return np.zeros(0), np.zeros((0, len(self.iou_thresholds)), bool)
        return np.concatenate(self.scores), np.concatenate(self.tps)

    def _column(self, iou: float) -> int:
        for k, t in enumerate(self.iou_thresholds):
            if abs(t - iou) < 1e-9:
                return k
        raise ValueError(f"IoU {iou} was not scored (thresholds: {self.iou_thresholds})")

    def ap(self, iou: float = 0.5) -> float:
        scores, tp = self._pooled()
        return average_precision(scores, tp[:, self._column(iou)], self.n_gt)

    @property
    def ap_coco(self) -> float:
        """AP averaged over IoU 0.50:0.05:0.95."""
        return float(np.mean([self.ap(t) for t in COCO_IOUS]))

    def prf(self, iou: float = 0.5, score_threshold: float = 0.0) -> tuple[float, float, float]:
        """Precision, recall and F1 of the detections scoring >= ``score_threshold``. With no detections
        precision is 1 if there is nothing to find, else 0; with no ground truth recall is 1."""
        scores, tp = self._pooled()
        kept = tp[scores >= score_threshold, self._column(iou)]
        n_det, hits = len(kept), int(kept.sum())
        precision = hits / n_det if n_det else float(self.n_gt == 0)
        recall = hits / self.n_gt if self.n_gt else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1

    def summary(self, score_threshold: float = 0.0) -> dict:
        """The detector leaderboard's numbers: AP@0.5, AP@[.5:.95], and P/R/F1 at IoU 0.5."""
        p, r, f1 = self.prf(0.5, score_threshold)
        return {"ap50": self.ap(0.5), "ap": self.ap_coco, "precision": p, "recall": r, "f1": f1,
                "pages": self.pages, "gt_lines": self.n_gt, "detections": int(sum(len(s) for s in self.scores)),
                "score_threshold": score_threshold}


def detection_metrics(predictions, ground_truths, score_threshold: float = 0.0) -> dict:
    """Score pages at once: ``predictions`` a list of (boxes, scores), ``ground_truths`` a list of boxes."""
    counts = DetectionCounts()
    for (boxes, scores), gt in zip(predictions, ground_truths, strict=True):
        counts.update(boxes, scores, gt)
    return counts.summary(score_threshold)
