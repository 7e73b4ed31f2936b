"""The page pipeline itself: detect, order, crop and recognize the lines of one page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.images import to_ink_bright
from ..errors import UserError
from .detection import detect_lines, reading_order
from .loading import load_image, stored_size
from .recognition import crop_lines, recognize


@dataclass
class PageResult:
    width: int
    height: int
    lines: list[dict] = field(default_factory=list)  # {"box": [x0, y0, x1, y1], "score": s, "text": t}, in reading order
    source: str = ""

    @property
    def text(self) -> str:
        return "\n".join(line["text"] for line in self.lines)

    @property
    def boxes(self) -> np.ndarray:
        return np.array([line["box"] for line in self.lines], dtype=np.float32).reshape(-1, 4)

    def as_dict(self) -> dict:
        return {"source": self.source, "width": self.width, "height": self.height, "lines": self.lines,
                "text": self.text}


def transcribe_page(image: str | Path | np.ndarray, detector, recognizer, *, ink: str = "auto",
                    score_threshold: float | None = None, device: str = "auto", batch_size: int = 16) -> PageResult:
    """Detect, order, crop and recognize the lines of one page. ``image`` is a file or a uint8 array
    (``ink`` says which way round its ink is: ``dark`` for scans, ``bright`` for ocrbench arrays)."""
    source = str(image) if not isinstance(image, np.ndarray) else "<array>"
    gray = load_image(image) if not isinstance(image, np.ndarray) else image
    if gray.ndim != 2:
        raise UserError(f"a page array must be 2-D grayscale, got shape {gray.shape}")
    # boxes are reported in the file's own pixels, although a page over WORK_SIDE is processed downscaled
    size = stored_size(image) if not isinstance(image, np.ndarray) else (gray.shape[1], gray.shape[0])
    page = to_ink_bright(gray, ink)
    boxes, scores = detect_lines(detector, page, score_threshold, device)
    return read_lines(page, boxes, scores, recognizer, batch_size, device, size, source)


def read_lines(page: np.ndarray, boxes: np.ndarray, scores: np.ndarray, recognizer, batch_size: int = 16,
               device: str = "auto", size: tuple[int, int] | None = None, source: str = "") -> PageResult:
    """The result of an ink-bright page's detections: lines in reading order, cropped and recognized (no
    texts without a ``recognizer``); boxes scaled from ``page`` pixels to ``size`` (width, height) when given."""
    width, height = size or (page.shape[1], page.shape[0])
    order = reading_order(boxes)
    boxes, scores = boxes[order], scores[order]
    texts = recognize(recognizer, crop_lines(page, boxes), batch_size, device) if recognizer is not None else [""] * len(boxes)
    to_file = np.array([width / page.shape[1], height / page.shape[0]] * 2, dtype=np.float32)
    lines = [{"box": [round(float(v), 1) for v in b * to_file], "score": round(float(s), 4), "text": t}
             for b, s, t in zip(boxes, scores, texts)]
    return PageResult(width=width, height=height, lines=lines, source=source)
