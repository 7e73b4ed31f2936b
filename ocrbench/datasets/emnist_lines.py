"""``emnist-lines``: sentences written with real handwritten EMNIST glyphs (after the Full Stack Deep Learning
labs' EMNIST-Lines, re-done here with typographic placement).

Each line is a word window of a public-domain sentence of its split (the same vendored Austen sentences
as synth-lines, split by a hash of their text, so no test sentence is seen in training), reduced to EMNIST's
62 classes and space (apostrophes are dropped, other punctuation becomes a space, accents are stripped).
Every character is a glyph drawn at random from the split's **own** glyph pool (:func:`emnist.split_pool`:
disjoint train/val/test glyphs, so no test glyph was seen in training), cropped to its ink and placed like
handwriting:

* EMNIST normalises every glyph to the same box, which erases the size difference between ``o`` and ``O``
  or ``s`` and ``S``. Glyphs are therefore scaled by typographic class: capitals, digits and ascender letters
  (``bdfhklt``) to the cap height, x-height letters to a per-line x-height (0.55-0.7 of it), descender
  letters (``gjpqy``) hang below the baseline. Case is kept.
* Spacing and overlap vary per line (from touching/overlapping letters to airy ones) and per character;
  word gaps, glyph size and baseline jitter too.

A line is drawn directly at ``cfg.height`` and is a pure function of (``EMNIST_LINES_VERSION``, split,
index, ``cfg.seed``, height, options, glyph pool). A split is generated on first access and cached under
``<cache>/lines/``. Lengths: ``data.train_size`` / ``val_size`` / ``test_size`` lines.

Options (``DataConfig.options``):
    max_chars (32), min_chars (4): line length range in characters (FSDL used up to 32-34).
    overlap ([-0.25, 0.1]): range of the per-line letter spacing, in cap heights (negative overlaps).
    download (false): let torchvision download EMNIST into ``data.root`` when it is not there.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from ..config import DataConfig
from ..data import integrity
from ..data.cache import CachedLines, cache_base
from ..data.charset import Charset
from ..data.registry import register_check, register_dataset, resolve_options
from ..errors import UserError
from . import emnist
from . import synth_lines as sl

EMNIST_LINES_VERSION = 1  # bump whenever a change alters any generated pixel or text
DEFAULT_OPTIONS = {"max_chars": 32, "min_chars": 4, "overlap": (-0.25, 0.1), "download": False}
X_HEIGHT_CHARS = set("acemnorsuvwxz")
ASCENDER_CHARS = set("bdfhklt")
DESCENDER_CHARS = set("gjpqy")
CAP = 0.58  # cap height as a fraction of the line height
TOP = 0.08  # cap top below the line's top edge; descenders reach about TOP + 1.4 * CAP


def parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``DataConfig.options`` of emnist-lines over :data:`DEFAULT_OPTIONS`, checked and normalised."""
    opts = resolve_options("emnist-lines", options, DEFAULT_OPTIONS)
    opts["overlap"] = tuple(float(v) for v in opts["overlap"])
    if not 1 <= opts["min_chars"] <= opts["max_chars"]:
        raise UserError(f"emnist-lines needs 1 <= min_chars <= max_chars, got {opts}")
    return opts


# ---- text -------------------------------------------------------------------------------------------------
def to_glyph_text(sentence: str, chars: str) -> str:
    """A sentence reduced to ``chars`` plus space: accents stripped, apostrophes dropped (``don't`` → ``dont``),
    any other character becomes a space; runs of spaces collapse."""
    text = unicodedata.normalize("NFKD", sentence)
    text = "".join(c for c in text if not unicodedata.combining(c)).replace("'", "").replace("\u2019", "")
    allowed = set(chars)
    return " ".join("".join(c if c in allowed else " " for c in text).split())


@cache
def glyph_sentences(split: str, chars: str, min_chars: int) -> tuple[str, ...]:
    out = (to_glyph_text(s, chars) for s in sl.load_sentences(split))
    return tuple(s for s in out if len(s) >= min_chars)


# ---- layout -----------------------------------------------------------------------------------------------
def ink_boxes(images: np.ndarray, threshold: int = 20) -> np.ndarray:
    """(N, 4) ink boxes ``x0, y0, x1, y1`` (exclusive) of 28x28 glyphs; an empty glyph keeps its full box."""
    ink = images > threshold
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    n, h, w = images.shape

    def span(mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        first = np.where(mask.any(1), mask.argmax(1), 0)
        last = np.where(mask.any(1), size - mask[:, ::-1].argmax(1), size)
        return first, last

    y0, y1 = span(rows, h)
    x0, x1 = span(cols, w)
    return np.stack([x0, y0, x1, y1], axis=1)


def glyph_metrics(char: str, x_height: float) -> tuple[float, float]:
    """(ink height, drop below the baseline), in cap heights, of a character's glyph."""
    if char in X_HEIGHT_CHARS:
        return x_height, 0.0
    if char == "i":
        return x_height + 0.25, 0.0
    if char == "t":
        return 0.85, 0.0
    if char == "j":
        return x_height + 0.6, 0.35
    if char in DESCENDER_CHARS:
        return x_height + 0.35, 0.35
    return 1.0, 0.0  # capitals, digits, ascenders


def render_line(rng: np.random.Generator, text: str, pool: emnist.GlyphPool, boxes: np.ndarray,
                by_char: Mapping[str, np.ndarray], height: int, overlap: tuple[float, float]) -> np.ndarray:
    """Draw ``text`` with random glyphs of ``pool``; uint8 (height, W), ink bright."""
    cap = CAP * height
    x_height = rng.uniform(0.55, 0.7)
    spacing = rng.uniform(*overlap) * cap
    word_gap = rng.uniform(0.35, 0.7) * cap
    baseline = (TOP + rng.uniform(-0.03, 0.03)) * height + cap
    pieces, x = [], rng.uniform(1, 5)
    for char in text:
        if char == " ":
            x += word_gap
            continue
        idx = by_char[char][rng.integers(len(by_char[char]))]
        x0, y0, x1, y1 = boxes[idx]
        glyph = pool.images[idx, y0:y1, x0:x1]
        ink_h, drop = glyph_metrics(char, x_height)
        target_h = max(2, round(ink_h * cap * rng.normal(1.0, 0.05)))
        target_w = max(1, round((x1 - x0) * target_h / (y1 - y0) * rng.normal(1.0, 0.05)))
        glyph = np.asarray(Image.fromarray(glyph).resize((target_w, target_h), Image.BILINEAR))
        bottom = baseline + drop * cap + rng.normal(0, 0.03 * cap)
        pieces.append((glyph, round(x), round(bottom) - target_h))
        x += target_w + spacing + rng.normal(0, 0.04 * cap)
    width = max(1, int(max(px + g.shape[1] for g, px, _ in pieces) + rng.uniform(1, 5)))
    canvas = np.zeros((height, width), dtype=np.uint8)
    for glyph, px, py in pieces:
        gy0, gx0 = max(0, -py), max(0, -px)
        y0, y1 = py + gy0, min(height, py + glyph.shape[0])
        x0, x1 = px + gx0, min(width, px + glyph.shape[1])
        if y1 > y0 and x1 > x0:
            region = canvas[y0:y1, x0:x1]
            np.maximum(region, glyph[gy0:gy0 + y1 - y0, gx0:gx0 + x1 - x0], out=region)
    return canvas


# ---- the dataset ------------------------------------------------------------------------------------------
class EmnistLines(CachedLines):
    """Split ``split`` of emnist-lines: ``cfg.size_of(split)`` lines of height ``cfg.height``."""

    def __init__(self, split: str, cfg: DataConfig):
        if split not in ("train", "val", "test"):
            raise UserError(f"emnist-lines has splits train, val, test; got {split!r}")
        self.split, self.options = split, parse_options(cfg.options)
        root = emnist.resolve_root(cfg, "emnist-lines")
        self.pool = emnist.split_pool(root, split, bool(self.options["download"]), cache_base(cfg))
        # Texts only ever hold the pool's characters, so the OOV policy never applies.
        self.charset = Charset(" " + self.pool.chars)  # pool.chars is in IAM order, where space comes first
        self.size = cfg.size_of(split)
        key = {"version": EMNIST_LINES_VERSION, "split": split, "size": self.size, "seed": cfg.seed,
               "options": self.options, "pool": self.pool.source, "glyphs": len(self.pool),
               "assets": sl.assets_digest(split)}
        super().__init__(f"emnist-lines-{split}", cfg, key)

    def render_all(self):
        boxes, by_char = ink_boxes(self.pool.images), self.pool.by_char()
        chars = "".join(c for c in self.charset.chars if c in by_char)
        sentences = glyph_sentences(self.split, chars, self.options["min_chars"])
        for index in range(self.size):
            rng = np.random.default_rng([EMNIST_LINES_VERSION, zlib.crc32(self.split.encode()), index,
                                         self.cfg.seed, self.cfg.height])
            text = sl.pick_text(rng, sentences, self.options["min_chars"], self.options["max_chars"])
            image = render_line(rng, text, self.pool, boxes, by_char, self.cfg.height, self.options["overlap"])
            yield str(index), image, text, None, None

    def sample_meta(self, index: int) -> dict:
        return {"index": index}


@register_dataset(
    "emnist-lines",
    description="Sentences written with real EMNIST handwritten glyphs, disjoint glyph pools per split "
    "(needs EMNIST: data.root)",
    license="Glyphs: NIST SD19 derivative (US government work); text: public domain (Jane Austen's novels, from Debian's r-cran-janeaustenr)",
    citation=emnist._EMNIST_CITE + "; after the Full Stack Deep Learning text recognizer labs' EMNIST-Lines",
    needs_root=True,
    sizes="generated: data.train_size / val_size / test_size lines (defaults 20,000 / 500 / 1,000); glyphs from "
    "the WebP test pool: 93,059 / 11,627 / 11,637 (80/10/10 per class)",
    charset="EMNIST ByClass 62 (0-9 A-Z a-z) + space",
)
def emnist_lines(split: str, cfg: DataConfig) -> EmnistLines:
    return EmnistLines(split, cfg)


@register_check("emnist-lines")
def check_emnist_lines(root, download: bool = False, **_) -> integrity.CheckReport:
    report = emnist.check_emnist(root, download=download)
    report.dataset = "emnist-lines"
    return report

