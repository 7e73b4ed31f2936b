"""Training-time augmentation, the same for every model of a suite (``train.augment`` on, ``train.augmentation``
names the policy).

- ``mild`` (the default, and all there was before policies): horizontal stretch and ink contrast, writer speed
  and pen pressure. Kept mild because the synthetic generator already varies slant, spacing, stroke width,
  distortion and noise.
- ``htr``: what the HTR best-practice studies train real lines with (Retsinas et al., "Best practices for a
  handwritten text recognition system", 2022; Wigington et al., ICDAR 2017; PyLaia's and kraken's training
  transforms): on top of ``mild``, a random shear (slant), a small rotation, a smooth elastic warp, erosion or
  dilation of the strokes (pen width) and a slight blur. Each applies to a share of the lines, so clean lines
  are still seen.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from .images import mesh_warp

STRETCH = (0.8, 1.25)  # horizontal scale factor range
CONTRAST = (0.6, 1.0)  # ink intensity scale range

SHEAR = (0.35, 0.25)  # (share of lines, largest |shear| in x per y): slant changes of up to ~14 degrees
ROTATE = (0.3, 1.5)  # (share, largest angle in degrees)
ELASTIC = (0.5, 0.08)  # (share, largest node displacement in line heights)
MORPH = (0.3, 0.5)  # (share, of which dilation; the rest erosion): one pixel at the line's height
BLUR = (0.25, 0.8)  # (share, largest Gaussian radius in pixels)


def augment_line(image: np.ndarray, rng: np.random.Generator, policy: str = "mild") -> np.ndarray:
    """A randomly augmented copy of a uint8 (H, W) ink-bright line image, same height."""
    line = Image.fromarray(image)
    if policy == "htr":
        line = _geometry(line, rng)
        line = _strokes(line, rng)
    h, w = line.height, line.width
    line = line.resize((max(1, round(w * rng.uniform(*STRETCH))), h), Image.BILINEAR)
    out = np.asarray(line, dtype=np.float32) * rng.uniform(*CONTRAST)
    return out.clip(0, 255).astype(np.uint8)


def _geometry(line: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Shear, rotation and an elastic warp, each to a share of the lines; the height never changes and the
    width grows by what the shear needs, so no ink is cut."""
    if rng.random() < SHEAR[0]:
        line = _shear(line, rng.uniform(-SHEAR[1], SHEAR[1]))
    if rng.random() < ROTATE[0]:
        line = line.rotate(rng.uniform(-ROTATE[1], ROTATE[1]), resample=Image.BILINEAR)
    if rng.random() < ELASTIC[0]:
        line = _elastic(line, rng, rng.uniform(0.02, ELASTIC[1]) * line.height)
    return line


def _shear(line: Image.Image, shear: float) -> Image.Image:
    """x' = x + shear * (y - h/2), on a canvas widened by |shear| * h."""
    w, h = line.size
    extra = math.ceil(abs(shear) * h)
    # Pillow's AFFINE maps output to input pixels: x_in = x_out - shear * (y - h/2) - extra/2
    return line.transform((w + extra, h), Image.AFFINE, (1, -shear, shear * h / 2 - extra / 2, 0, 1, 0),
                          Image.BILINEAR)


def _elastic(line: Image.Image, rng: np.random.Generator, amount: float) -> Image.Image:
    """A smooth random warp: mesh nodes about a line height apart, each moved by up to ``amount`` pixels."""
    w, h = line.size
    step = max(8, h)
    xs = np.arange(0, w + step, step, dtype=np.float64)
    ys = np.array([0.0, h / 2, h])
    src = np.stack(np.meshgrid(xs, ys), axis=-1) + rng.uniform(-amount, amount, (len(ys), len(xs), 2))
    return mesh_warp(line, (w, h), xs, ys, src)


def _strokes(line: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Pen width (dilation or erosion by one pixel: ink is bright, so MaxFilter thickens it) and a slight blur."""
    if rng.random() < MORPH[0]:
        if rng.random() < MORPH[1]:
            line = line.filter(ImageFilter.MaxFilter(3))
        else:  # half-strength erosion: a full one erases the one-pixel strokes of real pens at 32 px
            line = Image.blend(line, line.filter(ImageFilter.MinFilter(3)), 0.5)
    if rng.random() < BLUR[0]:
        line = line.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, BLUR[1])))
    return line
