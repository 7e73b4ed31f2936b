"""Accents drawn as pen strokes, for writers that have no glyph for an accented letter.

The Hershey stroke fonts hold ASCII only, and one handwriting font (Rufscript) has no accented letters, yet the
real track is French. A hand writes ``é`` as an ``e`` and then a short stroke above it, so that is how it is
drawn: the base letter's own glyph plus the accent's strokes, placed over the letter's top (slanted scripts
lean, so over the middle of the top of the ink, not of the box) or, for the cedilla, under its foot.
"""

from __future__ import annotations

import unicodedata

import numpy as np

ACUTE, GRAVE, CIRCUMFLEX, DIAERESIS, CEDILLA = "\u0301", "\u0300", "\u0302", "\u0308", "\u0327"
MARKS = (ACUTE, GRAVE, CIRCUMFLEX, DIAERESIS, CEDILLA)


def split_accent(ch: str) -> tuple[str, str] | None:
    """``(base letter, combining accent)`` of an accented letter (``"é"`` -> ``("e", ACUTE)``), else None."""
    parts = unicodedata.normalize("NFD", ch)
    if len(parts) == 2 and parts[1] in MARKS:
        return parts[0], parts[1]
    return None


def mark_strokes(mark: str, centre: float, top: float, foot: float, xh: float) -> list[np.ndarray]:
    """Polylines (x right, y down) of ``mark`` for a letter whose ink's top is at ``top``, its foot (baseline)
    at ``foot`` and whose top is centred at x ``centre``; ``xh`` is the x-height in the same units."""
    gap, rise, half = 0.3 * xh, 0.45 * xh, 0.28 * xh
    y = top - gap  # the bottom of a mark written above the letter
    shapes = {
        ACUTE: [[(centre - 0.15 * xh, y), (centre + 0.2 * xh, y - rise)]],
        GRAVE: [[(centre + 0.15 * xh, y), (centre - 0.2 * xh, y - rise)]],
        CIRCUMFLEX: [[(centre - half, y), (centre, y - 0.8 * rise), (centre + half, y)]],
        # dots are short dabs: the pen touches down and lifts
        DIAERESIS: [[(centre + dx, y - 0.2 * rise), (centre + dx + 0.06 * xh, y - 0.35 * rise)]
                    for dx in (-0.25 * xh, 0.2 * xh)],
        CEDILLA: [[(centre, foot), (centre + 0.05 * xh, foot + 0.2 * xh), (centre + 0.22 * xh, foot + 0.35 * xh),
                   (centre - 0.12 * xh, foot + 0.55 * xh)]],
    }
    return [np.asarray(s, dtype=np.float32) for s in shapes[mark]]


def top_centre(points: np.ndarray, foot: float) -> tuple[float, float]:
    """The top y of ink points (N, 2) and the mean x of those in its upper 30%: where an accent goes."""
    top = float(points[:, 1].min())
    upper = points[points[:, 1] <= top + 0.3 * (foot - top)]
    return top, float(upper[:, 0].mean())
