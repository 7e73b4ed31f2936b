"""What a scanned page adds around a clean synthetic line: neighbouring lines' ink, paper, rules, bleed-through.

Applied when a sample is read (the clean line stays cached), each from the sample's own noise generator, so a
sample is still a pure function of its seed. Images are ink-bright on a dark background, as everywhere here.

Why: real line crops (copiste-dun-jour, stanford-memorials; see the contact sheets in docs/img) are near-white
paper with thin, uneven ink, faint school rules (Seyes grids in the French copies), the ascenders and
descenders of the lines above and below cut by the crop, and the other side of the sheet showing through; the
v3 generator's lines are a grey grain with none of these.
"""

from __future__ import annotations

import math

import numpy as np

STRIP = (0.12, 0.3)  # share of the line height a neighbouring line reaches into
RULE_SHARE = 0.5  # lines written on ruled paper
MARGIN_RULE_SHARE = 0.15  # of those, with a vertical margin rule
BLEED_SHARE = 0.3  # lines with the other side of the sheet showing through


def add_neighbours(clean: np.ndarray, above: np.ndarray, below: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``clean`` with the bottom strip of ``above`` over its top rows and the top strip of ``below`` under its
    bottom rows (ink is the brighter of the two), each shifted sideways at random."""
    out = clean.copy()
    h, w = clean.shape
    for other, at_top in ((above, True), (below, False)):
        k = max(1, round(h * rng.uniform(*STRIP)))
        strip = other[h - k :] if at_top else other[:k]
        strip = _shift_to_width(strip, w, int(rng.integers(-w // 4, w // 4 + 1)))
        rows = slice(0, k) if at_top else slice(h - k, h)
        out[rows] = np.maximum(out[rows], strip)
    return out


def _shift_to_width(strip: np.ndarray, width: int, shift: int) -> np.ndarray:
    """``strip`` moved ``shift`` pixels right and cut or zero-padded to ``width`` columns."""
    out = np.zeros((strip.shape[0], width), dtype=strip.dtype)
    src = strip[:, max(0, -shift) :]
    dst = max(0, shift)
    n = max(0, min(src.shape[1], width - dst))
    out[:, dst : dst + n] = src[:, :n]
    return out


def add_scan_paper(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A scanned sheet under the ink: uneven pen pressure, near-white paper with slow shading and little
    grain, faint rules on half the lines, and bleed-through of the other side on some."""
    h, w = clean.shape
    ink = clean.astype(np.float32) * _pressure(w, rng)[None, :]
    paper = np.full((h, w), rng.uniform(0, 10), dtype=np.float32)
    paper += _shading(h, w, rng)
    if rng.random() < RULE_SHARE:
        paper = np.maximum(paper, _rules(h, w, rng))
    if rng.random() < BLEED_SHARE:
        paper = np.maximum(paper, np.fliplr(clean).astype(np.float32) * rng.uniform(0.06, 0.2))
    img = np.maximum(ink, paper) + rng.standard_normal((h, w), dtype=np.float32) * rng.uniform(0.5, 4)
    return np.clip(img, 0, 255).astype(np.uint8)


def _pressure(width: int, rng: np.random.Generator) -> np.ndarray:
    """Ink intensity along the line: a slow wave between 1 - depth and 1 (pen pressure and ink flow)."""
    depth = rng.uniform(0, 0.45)
    period = rng.uniform(0.5, 3) * max(width, 1)
    x = np.arange(width, dtype=np.float32)
    return 1 - depth * (0.5 + 0.5 * np.sin(2 * math.pi * x / period + rng.uniform(0, 2 * math.pi)))


def _shading(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Uneven lighting and paper tone: a plane tilted at random, up to 8 levels across the line."""
    gx, gy = rng.uniform(-1, 1, 2) * rng.uniform(0, 8)
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    return np.abs(gx * x + gy * y)


def _rules(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Faint horizontal rules one to two x-heights apart (a Seyes grid has four per line), sometimes a
    vertical margin rule."""
    out = np.zeros((h, w), dtype=np.float32)
    gap = h * rng.uniform(0.12, 0.35)
    level = rng.uniform(12, 45)
    for y in np.arange(rng.uniform(0, gap), h, gap):
        out[int(y)] = level * rng.uniform(0.6, 1.0)
    if rng.random() < MARGIN_RULE_SHARE and w > 4:
        out[:, int(rng.integers(0, w))] = rng.uniform(20, 60)
    return out
