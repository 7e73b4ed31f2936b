"""Line detection on one page: boxes in the page's pixels, from one detector forward pass, and reading order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ..data.samples import PageSample
from ..runtime import resolve_device

Detections = tuple[np.ndarray, np.ndarray]  # boxes (N, 4) x0, y0, x1, y1 in page pixels; scores (N,)


def detect_lines(detector, page: np.ndarray, score_threshold: float | None = None, device: str = "auto"
                 ) -> Detections:
    """Line boxes (N, 4) in ``page`` pixels and their scores, for an ink-bright page of any size."""
    (detections,) = detect_lines_at(detector, page, (score_threshold,), device)
    return detections


@torch.no_grad()
def detect_lines_at(detector, page: np.ndarray, thresholds: Sequence[float | None], device: str = "auto"
                    ) -> list[Detections]:
    """The detections of an ink-bright page at each score threshold (None: the detector's own), from **one**
    forward pass: the pipeline scores AP from low-score detections and transcribes at the operating point."""
    dev = resolve_device(device)
    detector.to(dev).eval()
    batch = detector.collate([PageSample(page, np.zeros((0, 4), np.float32), [])])
    images, sizes, scale = batch.images.to(dev), batch.sizes.to(dev), float(batch.scales[0])
    with forward_once(detector):
        found = [detector.predict(images, sizes, t)[0] for t in thresholds]
    return [(boxes.float().cpu().numpy() / scale, scores.float().cpu().numpy()) for boxes, scores in found]


@contextmanager
def forward_once(module: nn.Module) -> Iterator[None]:
    """Within the block, calling ``module`` again on the very input tensor of its previous call returns that
    call's output instead of running the network again.

    ``predict`` is forward + post-processing (threshold, NMS, box merging: all depend on the threshold), and
    the detector contract has no call for the post-processing alone; this lets two thresholds share one
    forward pass with results identical to two ``predict`` calls (``predict`` must not modify its forward
    output in place). The module's own ``forward`` is restored on leaving.
    """
    run, last = module.forward, {}

    def forward(*args, **kwargs):
        if kwargs or len(args) != 1 or args[0] is not last.get("input"):
            last.update(input=args[0] if len(args) == 1 and not kwargs else None, output=run(*args, **kwargs))
        return last["output"]

    had_own = "forward" in module.__dict__
    module.forward = forward
    try:
        yield
    finally:
        if had_own:
            module.forward = run
        else:
            del module.forward


def reading_order(boxes: np.ndarray) -> list[int]:
    """Indices of ``boxes`` top to bottom; boxes side by side on one text row (vertical centres within half
    a line height of the row's first box) left to right."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    order, rows = list(np.argsort(cy, kind="stable")), []
    for i in order:
        if rows and abs(cy[i] - cy[rows[-1][0]]) < 0.5 * min(h[i], h[rows[-1][0]]):
            rows[-1].append(i)
        else:
            rows.append([i])
    return [int(i) for row in rows for i in sorted(row, key=lambda k: boxes[k, 0])]
