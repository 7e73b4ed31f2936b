"""What every dataset yields and how samples become padded batches: lines (recognizers) and pages (detectors).

Image convention, everywhere in ocrbench: a line or a page is a ``uint8`` array of shape ``(height, width)`` with
**ink bright (255) on a dark background (0)**, so zero padding is blank paper. Line batches are ``float32`` in
[0, 1], shape ``(B, 1, H, W_max)``, padded on the right with zeros, with the true widths alongside; page batches
are padded right and bottom, with each page's size and scale alongside. The types live here, below both the
datasets that make them and the models that read them, so neither imports the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .charset import Charset


@dataclass
class LineSample:
    image: np.ndarray  # uint8 (H, W), ink bright
    text: str  # already prepared by the dataset's charset (NFC, in-charset)
    meta: dict = field(default_factory=dict)


@dataclass
class LineBatch:
    images: torch.Tensor  # float32 (B, 1, H, W_max), ink high, zero padded
    widths: torch.Tensor  # int64 (B,) true width of each image
    targets: torch.Tensor  # int64 (B, L_max) charset indices, zero padded
    target_lengths: torch.Tensor  # int64 (B,)
    texts: list[str]
    # CPU copies of widths and target_lengths, kept by to(): what must be known on the host (the lengths that
    # pack a BiLSTM's input, CTC's length arguments, the label-length check) then needs no device→host copy,
    # which would stall the host until the device has caught up, every training step. None: not moved yet.
    host_widths: torch.Tensor | None = field(default=None, repr=False, compare=False)
    host_target_lengths: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.texts)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> LineBatch:
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        widths, target_lengths = self.lengths_on_host(copy=False)
        return LineBatch(move(self.images), move(self.widths), move(self.targets),
                         move(self.target_lengths), self.texts, widths, target_lengths)

    def lengths_on_host(self, copy: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(widths, target_lengths)`` on the CPU: the copies kept by :meth:`to`, the tensors themselves on a
        CPU batch, else (``copy=True``) a device→host copy, which synchronises; ``copy=False`` gives None."""
        def host(kept: torch.Tensor | None, t: torch.Tensor) -> torch.Tensor | None:
            if kept is not None:
                return kept
            if t.device.type == "cpu":
                return t
            return t.cpu() if copy else None

        return host(self.host_widths, self.widths), host(self.host_target_lengths, self.target_lengths)

    def pin_memory(self) -> LineBatch:
        """The batch in page-locked memory, so that ``to(device, non_blocking=True)`` is an asynchronous copy.
        ``DataLoader(pin_memory=True)`` calls this on every batch (without it, a custom type stays pageable)."""
        return LineBatch(self.images.pin_memory(), self.widths.pin_memory(), self.targets.pin_memory(),
                         self.target_lengths.pin_memory(), self.texts)


# Bounds on one line, so a page or region transcribed as one line (11,000 characters) or a crop of a whole row of
# a ledger cannot take the machine's memory: a CTC model pads a line to (2 x characters + 1) x its stride, and a
# batch to its widest line. Real lines are far inside: IAM's longest has under 100 characters and a width under
# 40 times its height; the synthetic lines 48 characters.
MAX_LINE_CHARS = 500
MAX_LINE_ASPECT = 100  # width / height (after resizing to the line height: 6,400 pixels at height 64)


def line_problem(text: str, width: int, height: int) -> str | None:
    """Why a line is too big to read (a sentence naming the bound), or None."""
    if len(text) > MAX_LINE_CHARS:
        return (f"line of {len(text):,} characters, over the limit of {MAX_LINE_CHARS} (a region or page "
                "transcribed as one line?)")
    if width > MAX_LINE_ASPECT * max(1, height):
        return (f"line crop {width}x{height} px is over {MAX_LINE_ASPECT} times wider than high (a box around "
                "several lines or a whole row?)")
    return None


def resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
    """Scale a line image to ``height`` pixels, keeping its aspect ratio."""
    h, w = image.shape
    if h == height:
        return image
    new_w = max(1, round(w * height / h))
    return np.asarray(Image.fromarray(image).resize((new_w, height), Image.BILINEAR))


class LineCollator:
    """Pads line samples into a :class:`LineBatch`.

    Args:
        charset: encodes the texts.
        height: every image is resized to this height (aspect ratio kept).
        min_width: images narrower than this are right-padded with blank paper: an int (a model's receptive
            field) or a function of the label length (CTC needs frames for every character).
        width_multiple: the padded batch width is rounded up to a multiple of this (a model's stride).
    """

    def __init__(self, charset: Charset, height: int, min_width: int | Callable[[int], int] = 1,
                 width_multiple: int = 1):
        self.charset, self.height = charset, height
        self.min_width, self.width_multiple = min_width, width_multiple

    def _min_width(self, text_length: int) -> int:
        return self.min_width(text_length) if callable(self.min_width) else self.min_width

    def __call__(self, samples: list[LineSample]) -> LineBatch:
        images = [resize_to_height(s.image, self.height) for s in samples]
        widths = [max(im.shape[1], self._min_width(len(s.text))) for im, s in zip(images, samples)]
        w_max = self.width_multiple * math.ceil(max(widths) / self.width_multiple)
        batch = np.zeros((len(images), 1, self.height, w_max), dtype=np.uint8)
        for i, im in enumerate(images):
            batch[i, 0, :, : im.shape[1]] = im
        # Characters outside the charset are left out of the targets: they occur only when a model reads another
        # collection (evaluation: no loss is computed, and CER compares the texts, where they count as errors);
        # a training split is always prepared with the model's own charset.
        encoded = [self.charset.encode_known(s.text) for s in samples]
        targets = torch.zeros(len(encoded), max(1, max(map(len, encoded))), dtype=torch.long)
        for i, e in enumerate(encoded):
            targets[i, : len(e)] = torch.tensor(e, dtype=torch.long)
        return LineBatch(
            images=torch.from_numpy(batch).float().div_(255.0),
            widths=torch.tensor(widths, dtype=torch.long),
            targets=targets,
            target_lengths=torch.tensor([len(e) for e in encoded], dtype=torch.long),
            texts=[s.text for s in samples],
        )


# ---- pages (text-line detection) ---------------------------------------------------------------------------
@dataclass
class PageSample:
    """One page: ``image`` uint8 (H, W) with ink bright (255) on a dark background, like line images;
    ``boxes`` float32 (N, 4) line boxes ``x0, y0, x1, y1`` in image pixels; ``texts`` the N transcriptions
    (reading order: top to bottom)."""

    image: np.ndarray
    boxes: np.ndarray
    texts: list[str]
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        if len(self.texts) != len(self.boxes):
            raise ValueError(f"page has {len(self.boxes)} boxes but {len(self.texts)} texts")

    @property
    def text(self) -> str:
        """A one-line caption (contact sheets): the number of lines and the first line."""
        first = self.texts[0] if self.texts else ""
        return f"{len(self.texts)} lines: {first[:40]}{'...' if len(first) > 40 or len(self.texts) > 1 else ''}"


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
