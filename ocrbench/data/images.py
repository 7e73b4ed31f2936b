"""Images in ocrbench's convention: uint8 grayscale, **ink bright on a dark background** (0 = no ink).

Scans have dark ink on light paper; :func:`scan_to_ink` is the one conversion from a scan to the convention,
used by every loader of real handwriting (IAM, ALTO/PAGE folders) and by the page pipeline, so a line cropped
by the pipeline looks like the training lines of the real-data datasets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError, UserError

INK_MODES = ("auto", "dark", "bright")


def read_gray(path: str | Path) -> np.ndarray:
    """An image file as uint8 grayscale (as stored: scans have dark ink); DataError names a bad file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except Exception as e:
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def scan_to_ink(gray: np.ndarray) -> np.ndarray:
    """A scanned crop (dark ink on light paper) in ocrbench's convention: inverted, the paper level (the
    median, since most of a line crop is paper) moved to 0 and the strongest ink (99.5th percentile)
    stretched to 255, so scans of any exposure look like the training lines."""
    inv = 255.0 - gray.astype(np.float32)
    paper = float(np.median(inv))
    peak = float(np.percentile(inv, 99.5))
    scale = 255.0 / max(peak - paper, 32.0)  # a near-empty crop is not blown up into noise
    return np.clip((inv - paper) * scale + 0.5, 0, 255).astype(np.uint8)


def to_ink_bright(gray: np.ndarray, ink: str = "auto") -> np.ndarray:
    """``gray`` in the ocrbench convention. ``ink="dark"``: a scan, converted by :func:`scan_to_ink`;
    ``"bright"``: used as is; ``"auto"``: dark when most of the image is light."""
    if ink not in INK_MODES:
        raise UserError(f"ink must be auto, dark or bright, got {ink!r}")
    if ink == "auto":
        ink = "dark" if float(np.median(gray)) > 127 else "bright"
    if ink == "bright":
        return np.ascontiguousarray(gray, dtype=np.uint8)
    return scan_to_ink(gray)


def mesh_warp(image: Image.Image, size: tuple[int, int], xs: np.ndarray, ys: np.ndarray, src: np.ndarray) -> Image.Image:
    """Resample ``image`` onto a ``size`` canvas through a node grid: output node (xs[c], ys[r]) reads the input
    at ``src[r, c]`` (x, y), bilinear inside each cell. One Pillow MESH transform: one call for the whole line,
    where a per-pixel remap would cost a displacement field the size of the image."""
    quads = np.concatenate([src[:-1, :-1], src[1:, :-1], src[1:, 1:], src[:-1, 1:]], axis=-1)  # NW SW SE NE
    mesh = [((int(xs[c]), int(ys[r]), int(xs[c + 1]), int(np.ceil(ys[r + 1]))), tuple(quads[r, c].tolist()))
            for r in range(len(ys) - 1) for c in range(len(xs) - 1)]
    return image.transform(size, Image.MESH, mesh, Image.BILINEAR)
