"""Line recognition on a page: crops of the detected lines, transcribed in batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data.samples import LineSample
from ..decoding import GREEDY, Decoding
from ..runtime import resolve_device


def crop_lines(page: np.ndarray, boxes: np.ndarray, pad: float = 0.08) -> list[np.ndarray]:
    """Crops of an ink-bright page, each box grown by ``pad`` of its height on every side (clipped)."""
    H, W = page.shape
    crops = []
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        m = pad * max(y1 - y0, 1.0)
        a, b = int(max(0, np.floor(x0 - m))), int(max(0, np.floor(y0 - m)))
        c, d = int(min(W, np.ceil(x1 + m))), int(min(H, np.ceil(y1 + m)))
        crops.append(page[b:max(d, b + 1), a:max(c, a + 1)])
    return crops


@torch.no_grad()
def recognize(recognizer, crops: Sequence[np.ndarray], batch_size: int = 16, device: str = "auto",
              decoding: Decoding | str = GREEDY) -> list[str]:
    """Transcriptions of ink-bright line crops (any height: the recognizer's collator resizes them)."""
    if not crops:
        return []
    dev = resolve_device(device)
    recognizer.to(dev).eval()
    collate = recognizer.collate
    texts: list[str] = []
    for k in range(0, len(crops), batch_size):
        batch = collate([LineSample(c, "") for c in crops[k:k + batch_size]]).to(dev)
        texts += recognizer.predict(batch.images, batch.widths, decoding)
    return texts
