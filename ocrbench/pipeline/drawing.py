"""Pictures of a page with its reference and predicted line boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw


def draw_boxes(page: np.ndarray, predicted: np.ndarray | None = None, truth: np.ndarray | None = None,
               texts: Sequence[str] | None = None, ink_bright: bool = True) -> Image.Image:
    """The page as paper (dark ink on white) with reference boxes in green and predicted boxes in red,
    each predicted box numbered in the order given (and captioned with ``texts`` when given)."""
    im = Image.fromarray(255 - page if ink_bright else page).convert("RGB")
    draw = ImageDraw.Draw(im)
    width = max(1, round(max(page.shape) / 600))
    for b in np.asarray(truth if truth is not None else [], dtype=np.float32).reshape(-1, 4):
        draw.rectangle([float(v) for v in b], outline=(0, 170, 0), width=width)
    for k, b in enumerate(np.asarray(predicted if predicted is not None else [], dtype=np.float32).reshape(-1, 4)):
        draw.rectangle([float(v) for v in b], outline=(220, 0, 0), width=width)
        label = f"{k + 1}" + (f" {texts[k]}" if texts is not None and k < len(texts) else "")
        draw.text((float(b[0]) + 2, float(b[1]) - 11 * width), label, fill=(220, 0, 0))
    return im
