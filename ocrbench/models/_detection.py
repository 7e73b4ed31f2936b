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

A detector reads no charset; it keeps the one it is built with only because checkpoints store one. The page
types (:class:`PageSample`, :class:`PageBatch`, :func:`resize_page`) are defined in :mod:`ocrbench.data.samples`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.charset import Charset
from ..data.samples import PageBatch, PageSample, resize_page
from ._base import FlopsPasses, ModelInfo, OCRModel

# The page types live in data/samples.py; named here too because a detector (ours or a plugin's) takes them
# with its base class.
__all__ = ["Detector", "PageBatch", "PageSample", "resize_page"]


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
