"""A reader for Hershey stroke fonts in James Hurt's ``.jhf`` format.

Each line of a ``.jhf`` file is one glyph: a 5-column glyph number, a 3-column count of coordinate pairs
(the left/right bearing pair included), then the pairs as two characters each, coordinate = ``ord(c) - ord('R')``.
The pair ``" R"`` lifts the pen. The files we ship hold ASCII 32..126 in order, one glyph per line; the French accented letters are composed
from them (``_accents``). Coordinates are in font units, y pointing down, with the baseline at y = 9 and
capitals reaching y = -12.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..data.charset import FRENCH_LETTERS
from ._accents import mark_strokes, split_accent, top_centre

_ORIGIN = ord("R")
PEN_UP = " R"
BASELINE_Y = 9.0  # font units below the glyph origin


@dataclass(frozen=True)
class Glyph:
    left: int  # x of the left side bearing (usually negative)
    right: int  # x of the right side bearing
    strokes: tuple[np.ndarray, ...]  # each (N, 2) float32 polyline, x right, y down

    @property
    def advance(self) -> int:
        return self.right - self.left


def parse_glyph_line(line: str) -> Glyph:
    """Decode one glyph line (glyph number and count are read but the count is not trusted)."""
    body = line.rstrip("\r\n")[8:]
    left, right = ord(body[0]) - _ORIGIN, ord(body[1]) - _ORIGIN
    strokes, current = [], []
    for i in range(2, len(body) - 1, 2):
        pair = body[i : i + 2]
        if pair == PEN_UP:
            strokes.append(current)
            current = []
        else:
            current.append((ord(pair[0]) - _ORIGIN, ord(pair[1]) - _ORIGIN))
    strokes.append(current)
    arrays = tuple(np.asarray(s, dtype=np.float32) for s in strokes if s)
    return Glyph(left, right, arrays)


def _join_continuations(lines: list[str]) -> list[str]:
    """Some .jhf files wrap long glyphs onto lines that do not start with a glyph number."""
    joined: list[str] = []
    for line in lines:
        if joined and not line[:5].strip().isdigit():
            joined[-1] += line
        else:
            joined.append(line)
    return joined


@cache
def load_font(path: str | Path) -> dict[str, Glyph]:
    """Glyphs of a .jhf file keyed by character (line i is ``chr(32 + i)``)."""
    lines = [ln.rstrip("\r\n") for ln in Path(path).read_text(encoding="ascii").splitlines() if ln.strip()]
    glyphs = [parse_glyph_line(ln) for ln in _join_continuations(lines)]
    font = {chr(32 + i): g for i, g in enumerate(glyphs) if 32 + i < 127}
    return font | {ch: accented(font, ch) for ch in FRENCH_LETTERS}


def accented(font: dict[str, Glyph], ch: str) -> Glyph:
    """An accented letter as its base glyph plus the accent's strokes (an ``i`` loses its dot first)."""
    base, mark = split_accent(ch)
    glyph, xh = font[base], x_height(font)
    strokes = glyph.strokes
    if base == "i":  # the dot: a stroke wholly above the x-height
        strokes = tuple(s for s in strokes if s[:, 1].max() > BASELINE_Y - xh - 0.5)
    top, centre = top_centre(np.concatenate(strokes), BASELINE_Y)
    return Glyph(glyph.left, glyph.right, strokes + tuple(mark_strokes(mark, centre, top, BASELINE_Y, xh)))


def x_height(font: dict[str, Glyph]) -> float:
    """Height of lowercase 'x' in font units (9 for the script fonts, 14 for futural)."""
    ys = np.concatenate(font["x"].strokes)[:, 1]
    return float(ys.max() - ys.min())


def layout(font: dict[str, Glyph], text: str, spacing: np.ndarray | float = 0.0) -> tuple[list[np.ndarray], list[int]]:
    """Set ``text`` on one line in font units: origin at the left end of the baseline, y down.

    ``spacing`` (scalar or one value per character) is added to each glyph's advance.
    Returns the strokes and, for each stroke, the index of the character it belongs to.
    """
    extra = np.broadcast_to(np.asarray(spacing, dtype=np.float32), (len(text),))
    x, strokes, owner = 0.0, [], []
    for i, ch in enumerate(text):
        glyph = font[ch]
        shift = np.float32((x - glyph.left, -BASELINE_Y))
        strokes.extend(s + shift for s in glyph.strokes)
        owner.extend([i] * len(glyph.strokes))
        x += glyph.advance + float(extra[i])
    return strokes, owner
