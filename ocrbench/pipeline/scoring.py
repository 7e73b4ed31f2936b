"""Scoring: a detector on a page dataset, and the whole pipeline on pages with reference lines."""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
from torch.utils.data import DataLoader, Dataset

from ..data.images import to_ink_bright
from ..data.samples import PageSample
from ..harness.metrics import DetectionCounts, ErrorCounts
from ..progress import progress_bar
from ..runtime import autocast, resolve_device, set_matmul_precision, sync
from .detection import detect_lines_at
from .transcribe import read_lines

AP_SCORE_FLOOR = 0.01  # detections kept for the precision-recall curve


@torch.no_grad()
def evaluate_detector(model, dataset: Dataset, batch_size: int = 8, device: str = "auto", precision: str = "fp32",
                      score_threshold: float | None = None, progress: bool = False) -> dict:
    """AP@0.5 (``ap50``), AP@[.5:.95] (``ap``) from detections down to score 0.01; precision (``p50``), recall
    (``r50``) and ``f1`` at IoU 0.5 at the model's operating threshold; throughput (``eval_pages_per_s``:
    forward + NMS, data loading excluded)."""
    dev = resolve_device(device)
    set_matmul_precision(dev, precision)  # no TF32 unless "tf32" (torch's default allows it in cuDNN convs)
    model.to(dev).eval()
    threshold = model.score_threshold if score_threshold is None else score_threshold
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=model.collate)
    counts, seconds = DetectionCounts(), 0.0
    for batch in progress_bar(loader, progress, desc="eval detector"):
        batch = batch.to(dev)
        t0 = time.perf_counter()
        with autocast(dev, precision):
            preds = model.predict(batch.images, batch.sizes, score_threshold=min(AP_SCORE_FLOOR, threshold))
        sync(dev)
        seconds += time.perf_counter() - t0
        for (boxes, scores), gt in zip(preds, batch.boxes):
            counts.update(boxes.float().cpu().numpy(), scores.float().cpu().numpy(), gt.cpu().numpy())
    out = counts.summary(threshold)
    # record keys: "precision" in a run record is the numeric precision (fp32...), so P/R are p50/r50 here
    out["p50"], out["r50"] = out.pop("precision"), out.pop("recall")
    out.update(eval_seconds=round(seconds, 4), eval_pages_per_s=round(counts.pages / seconds, 3) if seconds else 0.0)
    return out


def evaluate_pages(pages: Iterable[PageSample], detector, recognizer=None, score_threshold: float | None = None,
                   device: str = "auto") -> dict:
    """The whole pipeline on ink-bright pages with reference boxes and texts: detection AP and P/R/F1 (in
    page pixels), and page-level CER/WER (recognized lines in reading order vs. the reference lines in their
    order, each joined with spaces; corpus-level over pages). One detector forward pass per page serves both
    the AP (detections down to ``AP_SCORE_FLOOR``) and the transcription (at the operating threshold)."""
    threshold = detector.score_threshold if score_threshold is None else score_threshold
    counts, errors, per_page = DetectionCounts(), ErrorCounts(), []
    for sample in pages:
        page = to_ink_bright(sample.image, "bright")
        (boxes, scores), operating = detect_lines_at(detector, page, (AP_SCORE_FLOOR, threshold), device)
        counts.update(boxes, scores, sample.boxes)
        result = read_lines(page, *operating, recognizer, device=device)
        entry = {"lines": len(result.lines), "gt_lines": len(sample.boxes), **{k: v for k, v in sample.meta.items()}}
        if recognizer is not None:
            hyp, ref = " ".join(line["text"] for line in result.lines), " ".join(sample.texts)
            page_errors = ErrorCounts().update([hyp], [ref])
            errors.update([hyp], [ref])
            entry.update(cer=page_errors.cer, hyp=hyp, ref=ref)
        per_page.append(entry)
    out = counts.summary(threshold)
    if recognizer is not None:
        out.update(page_cer=errors.cer, page_wer=errors.wer)
    out["per_page"] = per_page
    return out
