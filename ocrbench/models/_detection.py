"""Text-line detectors: the model contract (:class:`~ocrbench.models._base.OCRModel`) for pages.

A detector has ``task = "detection"`` and:

- ``info``: a :class:`~ocrbench.models._base.ModelInfo`; ``input_height`` is the page size it works at (the
  **long side** of a page, in pixels), ``output_stride`` the stride of its prediction grid, ``min_width`` the
  multiple that padded batches are rounded up to;
- ``collate(samples) -> PageBatch``: page samples (:class:`PageSample`, ink bright) to a padded batch, each
  page scaled so its long side is ``info.input_height`` (boxes scaled with it);
- ``loss(batch) -> Tensor``: mean training loss of a :class:`PageBatch`;
- ``predict(images, sizes=None) -> list[(boxes, scores)]``: per image, ``boxes`` float (N, 4) ``x0, y0, x1,
  y1`` in the pixels of ``images`` and ``scores`` float (N,) in [0, 1], highest first;
- ``forward(images)``: the raw prediction grid (what ``flops_passes`` counts and ``forward_features`` runs).

A detector reads no charset; it keeps the one it is built with only because checkpoints store one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..data.charset import Charset
from ..datasets.synth_pages import PageSample
from ._base import FlopsPasses, ModelInfo, OCRModel

__all__ = ["Detector", "PageBatch", "PageSample", "resize_page"]


@dataclass
class PageBatch:
    images: torch.Tensor  # float32 (B, 1, H_max, W_max) in [0, 1], ink high, zero padded right and bottom
    boxes: list[torch.Tensor]  # per page float32 (N_i, 4) x0, y0, x1, y1 in batch pixels
    sizes: torch.Tensor  # int64 (B, 2): (height, width) of each page before padding
    scales: torch.Tensor  # float32 (B,): batch pixels per sample pixel
    texts: list[list[str]]

    def __len__(self) -> int:
        return len(self.texts)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PageBatch:
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return PageBatch(move(self.images), [move(b) for b in self.boxes], move(self.sizes), move(self.scales),
                         self.texts)

    def pin_memory(self) -> PageBatch:
        """Page-locked copies, so that ``to(device, non_blocking=True)`` is asynchronous (DataLoader with
        ``pin_memory=True`` calls this)."""
        return PageBatch(self.images.pin_memory(), [b.pin_memory() for b in self.boxes], self.sizes.pin_memory(),
                         self.scales.pin_memory(), self.texts)


def resize_page(image: np.ndarray, boxes: np.ndarray, long_side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Scale a page (and its boxes) so that its longer side is ``long_side`` pixels; returns the scale too."""
    h, w = image.shape
    scale = long_side / max(h, w)
    if abs(scale - 1) < 1e-6:
        return image, boxes, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # BOX (area averaging) when shrinking keeps thin strokes of big scans; bilinear when enlarging.
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    resized = np.asarray(Image.fromarray(image).resize(size, resample))
    return resized, np.asarray(boxes, dtype=np.float32) * np.float32(scale), scale


class Detector(OCRModel):
    """Base class of every text-line detector (see the module docstring for the contract)."""

    task = "detection"
    score_threshold = 0.5  # default operating point of ``predict``
    nms_iou = 0.4  # boxes overlapping a better one by more than this are duplicates
    max_detections = 300

    def __init__(self, charset: Charset, info: ModelInfo):
        super().__init__(info)
        self.charset = charset  # unused by detectors; kept so checkpoints look like every other model's

    def loss(self, batch: PageBatch) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: torch.Tensor, sizes: torch.Tensor | None = None,
                score_threshold: float | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def collate(self, samples: list[PageSample]) -> PageBatch:
        multiple = self.info.min_width
        pages = [resize_page(s.image, s.boxes, self.info.input_height) for s in samples]
        h_max = multiple * math.ceil(max(p.shape[0] for p, _, _ in pages) / multiple)
        w_max = multiple * math.ceil(max(p.shape[1] for p, _, _ in pages) / multiple)
        batch = np.zeros((len(pages), 1, h_max, w_max), dtype=np.uint8)
        for i, (page, _, _) in enumerate(pages):
            batch[i, 0, : page.shape[0], : page.shape[1]] = page
        return PageBatch(
            images=torch.from_numpy(batch).float().div_(255.0),
            boxes=[torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)).reshape(-1, 4) for _, b, _ in pages],
            sizes=torch.tensor([p.shape for p, _, _ in pages], dtype=torch.long),
            scales=torch.tensor([s for _, _, s in pages], dtype=torch.float32),
            texts=[list(s.texts) for s in samples],
        )

    def flops_passes(self, images: torch.Tensor, widths: torch.Tensor | None = None,
                     target_length: int = 0) -> FlopsPasses:
        """The network over the pages, for training and inference alike (box decoding is not counted)."""
        return {"train": (self, (images,)), "infer": (self, (images,))}

    def profile_predict(self, images: torch.Tensor, widths: torch.Tensor | None = None,
                        target_length: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self.predict(images)

    def forward_features(self, images: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        return self(images)
