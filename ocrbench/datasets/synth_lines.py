"""``synth-lines``: synthetic handwriting lines, the embedded default dataset (no download).

Each line is a word window from a public-domain sentence of its split (``assets/text/austen-<split>``: Jane
Austen's novels, see ``build_assets``), written by one of two kinds of writer, about half each:

* **stroke writers**: Hershey stroke fonts (``assets/fonts/*.jhf``). Strokes are laid out, jittered per
  glyph, per stroke and per point, warped by a smooth displacement field, slanted and rotated as
  coordinates, then drawn with a pen of random width: closest to real pen trajectories.
* **font writers**: TrueType/OpenType handwriting fonts drawn character by character with Pillow (random
  letter spacing and baseline wobble), then slanted, rotated and elastically warped in one mesh resample.

Both then get cropped to the ink with a small margin, resized to ``cfg.height``, blurred, and (at access
time) paper noise. Ink is bright on a dark background.

Every image is a pure function of ``(GENERATOR_VERSION, split, index, cfg.seed, cfg.height, options)``. A
split is generated on first access and cached as one ``.npz`` under
``<cache>/synth-lines/v<GENERATOR_VERSION>/``; paper noise is added when a sample is read (seeded the same
way): clean lines compress about 4x, noisy ones hardly at all.

Options (``DataConfig.options``):
    max_chars (48): longest line in characters; IAM lines average ~43, so 48 keeps most lines IAM-like.
    min_chars (3): shortest line. 30% of lines draw a length uniformly in [min_chars, max_chars], the rest in
        [max_chars // 2, max_chars], so short words are seen without making them the typical line.
    stroke_fraction (0.5): share of lines written by Hershey stroke writers.
    writers ("all"): or a list of writer names (:data:`WRITERS`), to simplify the task (the quick suite's
        CPU budget); a kind with no writer listed falls back to the other kind.
    distortion (1.0): scale of slant spread, rotation, baseline wobble, elastic warp and blur, in [0, 1].

What a scan adds (``ocrbench/datasets/_scan.py``; each off by default, so v3 data stays as it was):
    paper ("grain"): "scan" puts the ink on near-white paper with uneven shading and pen pressure, faint rules
        on half the lines and bleed-through on some, instead of the v3 grey grain.
    neighbours (0.0): share of lines showing the cut-off ascenders and descenders of the lines above and below.
    pen_scale (1.0): stroke width factor; real pens are thinner than v3's (0.6 is close to the real copies).
    word_jitter (0.0): per-word baseline shift, size and slant (stroke writers) as hands drift within a line,
        on top of the per-line style; 1.0 is a typical hand.

A second language (off by default):
    french (0.0): share of lines in French: words drawn by their frequency in French (``assets/text/fr-words``,
        from PyPI's wordfreq), elisions joined (``l'homme``), commas and full stops, a capital after each. Word
        salad, not sentences: what a line recogniser sees is letters, accents and word shapes; the language
        model is trained on real text elsewhere. The charset gains :data:`FRENCH_LETTERS`; writers without an
        accented glyph (the Hershey fonts, Rufscript) write the base letter and the accent as a pen stroke.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import Dataset

from ..config import DataConfig
from ..data.cache import cache_home, generate_split, load_or_generate, pool_size
from ..data.charset import FRENCH_LETTERS, IAM_CHARS, Charset
from ..data.images import mesh_warp
from ..data.registry import register_dataset, resolve_options
from ..data.samples import LineSample
from ..errors import UserError
from ..records import stable_digest
from . import _hershey as hershey
from ._accents import mark_strokes, split_accent, top_centre
from ._build_assets import FRENCH_WORDS, missing_glyphs, split_corpus, text_file
from ._scan import add_neighbours, add_scan_paper

GENERATOR_VERSION = 3  # bump whenever a change alters any generated pixel or text
ASSETS = Path(__file__).parent / "assets"
DEFAULT_OPTIONS = {"max_chars": 48, "min_chars": 3, "stroke_fraction": 0.5, "writers": "all", "distortion": 1.0,
                   "paper": "grain", "neighbours": 0.0, "pen_scale": 1.0, "word_jitter": 0.0, "french": 0.0}
PAPERS = ("grain", "scan")
PARALLEL_MIN_SIZE = 2000  # below this, starting worker processes costs more than it saves
OVERSAMPLE = 1.5  # render at 1.5x the final scale so the downscale antialiases the (aliased) pen strokes


@dataclass(frozen=True)
class Writer:
    name: str
    kind: str  # "stroke" (Hershey .jhf) or "font" (TTF/OTF)
    joined: bool  # connected script: letter spacing must stay near 0 to keep the joins


STROKE_WRITERS = (
    Writer("cursive", "stroke", True), Writer("scripts", "stroke", True), Writer("scriptc", "stroke", True),
    Writer("futural", "stroke", False), Writer("timesi", "stroke", False),
)
FONT_WRITERS = (
    Writer("Breip.ttf", "font", False), Writer("ComicNeue-Italic.otf", "font", False),
    Writer("DancingScript-Regular.otf", "font", True), Writer("Delphine.ttf", "font", False),
    Writer("Ecolier-court.ttf", "font", True), Writer("KaushanScript-Regular.otf", "font", True),
    Writer("Kristi.ttf", "font", True), Writer("Purisa-Oblique.ttf", "font", False),
    Writer("Rufscript010.ttf", "font", False), Writer("ShadowsIntoLight.ttf", "font", False),
    Writer("SteveHand.ttf", "font", False),
)
WRITERS = STROKE_WRITERS + FONT_WRITERS


# ---- assets -----------------------------------------------------------------------------------------------
@cache
def load_sentences(split: str) -> tuple[str, ...]:
    """Sentences of one split (disjoint by construction, see ``build_assets``)."""
    path = text_file(split_corpus(split))
    return tuple(gzip.decompress(path.read_bytes()).decode("utf-8").splitlines())


@cache
def load_french_words() -> tuple[tuple[str, ...], np.ndarray]:
    """The French words, most frequent first, and their cumulative probabilities (for ``searchsorted``)."""
    rows = [line.split("\t") for line in gzip.decompress(text_file(FRENCH_WORDS).read_bytes()).decode().splitlines()]
    counts = np.array([int(c) for _, c in rows], dtype=np.float64)
    return tuple(w for w, _ in rows), np.cumsum(counts) / counts.sum()


@cache
def assets_digest(split: str, french: bool = False) -> str:
    """Hash of everything a split's content depends on besides the config, for the cache key (the French word
    list only where lines are drawn from it, so English-only data keeps its key)."""
    h = hashlib.sha1(text_file(split_corpus(split)).read_bytes())
    for w in WRITERS:
        h.update(w.name.encode())
    if french:
        h.update(text_file(FRENCH_WORDS).read_bytes())
    return h.hexdigest()[:16]


@cache
def _truetype(name: str, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: ~3x faster than raqm per call, and we place characters ourselves anyway.
    return ImageFont.truetype(str(ASSETS / "fonts" / name), size, layout_engine=ImageFont.Layout.BASIC)


@cache
def _font_x_height(name: str) -> float:
    """x-height per pixel of font size, so every font can be drawn at the same x-height."""
    top, bottom = _truetype(name, 100).getbbox("x", anchor="ls")[1::2]
    return (bottom - top) / 100


def _stroke_font(name: str) -> dict[str, hershey.Glyph]:
    return hershey.load_font(ASSETS / "fonts" / f"{name}.jhf")


# ---- options and seeds ------------------------------------------------------------------------------------
def parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``DataConfig.options`` of synth-lines over :data:`DEFAULT_OPTIONS`, checked and normalised."""
    opts = resolve_options("synth-lines", options, DEFAULT_OPTIONS)
    if not 1 <= opts["min_chars"] <= opts["max_chars"]:
        raise UserError(f"synth-lines needs 1 <= min_chars <= max_chars, got {opts}")
    if opts["writers"] != "all":
        names = [w.name for w in WRITERS]
        bad = [w for w in opts["writers"] if w not in names] if isinstance(opts["writers"], list) else [opts["writers"]]
        if bad or not opts["writers"]:
            raise UserError(f"synth-lines option writers must be 'all' or a list of writer names; unknown: {bad}; "
                            f"valid: {', '.join(names)}")
    else:
        del opts["writers"]  # the defaults leave the sample seeds (a hash of the options) as they were
    if not 0 <= opts["distortion"] <= 1:
        raise UserError(f"synth-lines option distortion must be within [0, 1], got {opts['distortion']}")
    if opts["distortion"] == 1.0:
        del opts["distortion"]
    _check_scan_options(opts)
    # defaults are left out, so the sample seeds (a hash of the options) of v3 configs stay as they were
    if not 0 <= opts["french"] <= 1:
        raise UserError(f"synth-lines option french must be within [0, 1], got {opts['french']}")
    return {k: v for k, v in opts.items() if k not in LATER_OPTIONS or v != DEFAULT_OPTIONS[k]}


SCAN_OPTIONS = ("paper", "neighbours", "pen_scale", "word_jitter")
ELISION_NEXT = "aeiouyhàâäéèêëîïôöùûü"  # first letters an elided word (l', d', qu') can join
LATER_OPTIONS = (*SCAN_OPTIONS, "french")  # added after v3: left out of the options at their defaults


def _check_scan_options(opts: Mapping[str, Any]) -> None:
    if opts["paper"] not in PAPERS:
        raise UserError(f"synth-lines option paper must be one of {', '.join(PAPERS)}, got {opts['paper']!r}")
    if not 0 <= opts["neighbours"] <= 1:
        raise UserError(f"synth-lines option neighbours must be within [0, 1], got {opts['neighbours']}")
    if not 0.2 <= opts["pen_scale"] <= 3:
        raise UserError(f"synth-lines option pen_scale must be within [0.2, 3], got {opts['pen_scale']}")
    if not 0 <= opts["word_jitter"] <= 3:
        raise UserError(f"synth-lines option word_jitter must be within [0, 3], got {opts['word_jitter']}")


def writer_pools(options: Mapping[str, Any]) -> tuple[tuple[Writer, ...], tuple[Writer, ...]]:
    """The (stroke, font) writers to draw from; with a ``writers`` subset, an empty pool falls back to the other."""
    chosen = options.get("writers")
    stroke, font = ((p if chosen is None else tuple(w for w in p if w.name in chosen)) for p in (STROKE_WRITERS,
                                                                                                  FONT_WRITERS))
    return stroke or font, font or stroke


def _stable_int(*parts: Any) -> int:
    return int.from_bytes(stable_digest(parts, "sha1", default=None)[:8], "big")


def sample_seed(split: str, index: int, seed: int, height: int, options: Mapping[str, Any], stream: int) -> list[int]:
    """Entropy for one sample's rng; ``stream`` 0 renders, 1 draws paper noise."""
    return [GENERATOR_VERSION, zlib.crc32(split.encode()), index, seed, height, _stable_int(options), stream]


# ---- text -------------------------------------------------------------------------------------------------
def pick_text(rng: np.random.Generator, sentences: tuple[str, ...], min_chars: int, max_chars: int) -> str:
    """A window of whole words from a random sentence, with a random target length."""
    def window(target: int) -> str:
        words = sentences[rng.integers(len(sentences))].split(" ")
        return _word_window(words, int(rng.integers(len(words))), target)

    return _line_of_length(rng, min_chars, max_chars, window)


def french_line(rng: np.random.Generator, min_chars: int, max_chars: int) -> str:
    """French words drawn by frequency, with a random target length as :func:`pick_text` draws it."""
    return _line_of_length(rng, min_chars, max_chars, lambda target: _french_words(rng, target))


def _line_of_length(rng: np.random.Generator, min_chars: int, max_chars: int, make: Callable[[int], str]) -> str:
    """``make(target)`` until its line has ``min_chars..max_chars`` characters: 30% of targets are drawn from
    the whole range, the rest from its upper half."""
    for _ in range(1000):
        low = min_chars if rng.random() < 0.3 else max(min_chars, max_chars // 2)
        line = make(int(rng.integers(low, max_chars + 1)))
        if min_chars <= len(line) <= max_chars:
            return line
    raise RuntimeError(f"no line of {min_chars}..{max_chars} characters found in 1000 tries")


def _french_words(rng: np.random.Generator, target: int) -> str:
    """Words until the next would pass ``target`` characters: an elided word (``l'``) joins a next word that
    starts with a vowel or h (else it is skipped); a comma follows 7% of words and a full stop 4%, and the
    line and every sentence start with a capital."""
    words, cumulative = load_french_words()
    drawn = [words[i] for i in np.searchsorted(cumulative, rng.random(target + 2), side="right").clip(0, len(words) - 1)]
    marks = rng.random(len(drawn))
    line, end, capital = "", 0, True
    for i, (word, after) in enumerate(zip(drawn, drawn[1:])):
        if word.endswith("'") and after[0] not in ELISION_NEXT:
            continue
        if capital:
            word = word[0].upper() + word[1:]
        piece = word if not line or line.endswith("'") else " " + word
        if len(line) + len(piece) > target:
            break
        line, capital = line + piece, False
        if not word.endswith("'"):
            if marks[i] < 0.11:
                capital = marks[i] >= 0.07
                line += "." if capital else ","
            end = len(line)
    return line[:end]  # never ends on an elision


def _word_window(words: list[str], start: int, target: int) -> str:
    """Grow forward from ``start`` while the line fits ``target``, then backward."""
    lo, hi, length = start, start + 1, len(words[start])
    while hi < len(words) and length + 1 + len(words[hi]) <= target:
        length += 1 + len(words[hi])
        hi += 1
    while lo > 0 and length + 1 + len(words[lo - 1]) <= target:
        lo -= 1
        length += 1 + len(words[lo])
    return " ".join(words[lo:hi])


# ---- style ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    """Per-line handwriting parameters; lengths are in x-heights unless named otherwise."""

    slant: float  # horizontal shear, + leans right (handwriting mostly leans right)
    rotation: float  # degrees, + counter-clockwise
    x_scale: float  # horizontal stretch of the whole line
    spacing: float  # extra letter spacing
    wobble_amp: float  # baseline wobble amplitude
    wobble_len: float  # baseline wobble wavelength
    wobble_phase: float
    warp_amp: float  # elastic distortion amplitude
    warp_len: float  # elastic distortion wavelength
    pen: float  # stroke writers: pen width; font writers: extra stroke in pixels at x-height 30
    ink: int  # peak ink value, 0-255
    blur: float  # weight of each neighbour in a 3-tap blur, 0-0.25, in final pixels
    margin: tuple[float, float, float, float]  # blank around the ink in line heights: left, top, right, bottom
    word_jitter: float = 0.0  # scale of per-word drift (the word_jitter option)


def sample_style(rng: np.random.Generator, writer: Writer, distortion: float = 1.0) -> Style:
    """A random style; ``distortion`` scales the geometric distortions and blur (1: the full range, 0: none)."""
    style = _sample_style(rng, writer)
    if distortion == 1.0:
        return style
    d = distortion
    return replace(style, slant=0.12 + d * (style.slant - 0.12), rotation=d * style.rotation,
                   wobble_amp=d * style.wobble_amp, warp_amp=d * style.warp_amp, blur=d * style.blur)


def _sample_style(rng: np.random.Generator, writer: Writer) -> Style:
    spacing = rng.uniform(-0.05, 0.1) if writer.joined else rng.uniform(-0.1, 0.3)
    return Style(
        slant=float(np.clip(rng.normal(0.12, 0.15), -0.25, 0.5)), rotation=float(rng.uniform(-1.5, 1.5)),
        x_scale=float(rng.uniform(0.8, 1.2)), spacing=float(spacing),
        wobble_amp=float(rng.uniform(0.0, 0.12)), wobble_len=float(rng.uniform(6, 20)),
        wobble_phase=float(rng.uniform(0, 2 * math.pi)),
        warp_amp=float(rng.uniform(0.02, 0.09)), warp_len=float(rng.uniform(2.0, 5.0)),
        pen=float(rng.uniform(0.09, 0.2) if writer.kind == "stroke" else rng.choice([0, 0, 0.5, 1, 1.5])),
        ink=int(rng.integers(150, 256)), blur=float(rng.uniform(0.0, 0.25)),
        margin=tuple(rng.uniform([0.02, 0.02, 0.02, 0.02], [0.12, 0.08, 0.12, 0.08]).tolist()),
    )


class SmoothField:
    """A smooth random 2-D displacement field: a sum of a few random plane waves per axis (cheap to evaluate)."""

    def __init__(self, rng: np.random.Generator, amplitude: float, wavelength: float, waves: int = 3):
        self.freq = rng.normal(size=(2, waves, 2)) * (2 * math.pi / wavelength)
        self.phase = rng.uniform(0, 2 * math.pi, size=(2, waves, 1))
        self.amp = amplitude / math.sqrt(waves)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Displacements (N, 2) at ``points`` (N, 2)."""
        args = self.freq @ points.T + self.phase  # (2, waves, N)
        return (self.amp * np.sin(args).sum(axis=1)).T


def _line_matrix(style: Style) -> np.ndarray:
    """Forward 2x2 map of a line: stretch, then slant (y down, so x -= slant * y), then rotate."""
    c, s = math.cos(math.radians(style.rotation)), math.sin(math.radians(style.rotation))
    rotate = np.array([[c, s], [-s, c]])  # y axis points down, so this turns counter-clockwise on screen
    shear = np.array([[1.0, -style.slant], [0.0, 1.0]])
    return rotate @ shear @ np.diag([style.x_scale, 1.0])


def _wobble(style: Style, x: np.ndarray, xh: float) -> np.ndarray:
    return style.wobble_amp * xh * np.sin(2 * math.pi * x / (style.wobble_len * xh) + style.wobble_phase)


# ---- stroke writers ---------------------------------------------------------------------------------------
def render_strokes(rng: np.random.Generator, text: str, writer: Writer, style: Style, xh: float) -> Image.Image:
    """Draw ``text`` with a Hershey font as jittered pen strokes; x-height ``xh`` pixels."""
    font = _stroke_font(writer.name)
    unit = xh / hershey.x_height(font)
    spacing = (style.spacing * xh + rng.normal(0, 0.04 * xh, len(text))) / unit
    strokes, owner = hershey.layout(font, text, spacing)
    if not strokes:
        return Image.new("L", (1, 1))
    sizes = [len(s) for s in strokes]
    owner = np.repeat(owner, sizes)
    stroke_id = np.repeat(np.arange(len(strokes)), sizes)
    pts = np.concatenate(strokes).astype(np.float64) * unit
    pts += rng.normal(0, 0.03 * xh, (len(text), 2))[owner]  # per-glyph placement
    pts += rng.normal(0, 0.02 * xh, (len(strokes), 2))[stroke_id]  # per-stroke: pen lifted and put down
    pts += rng.normal(0, 0.012 * xh, pts.shape)  # per-point tremor
    pts = _vary_glyphs(rng, pts, owner, len(text))
    if style.word_jitter:
        pts = _drift_words(rng, pts, owner, text, xh, style.word_jitter)
    pts[:, 1] += _wobble(style, pts[:, 0], xh)
    pts += SmoothField(rng, style.warp_amp * xh, style.warp_len * xh)(pts)
    pts = pts @ _line_matrix(style).T
    pen = max(2, round(style.pen * xh))  # >= 1.3 final pixels, or small heights lose their ink
    pts -= pts.min(axis=0) - (pen + 2)
    size = np.ceil(pts.max(axis=0) + pen + 2).astype(int)
    image = Image.new("L", (int(size[0]), int(size[1])))
    shades = (style.ink * rng.uniform(0.8, 1.0, len(strokes))).astype(int)
    _draw_strokes(image, pts, np.cumsum([0, *sizes]), pen, shades)
    return image


def _vary_glyphs(rng: np.random.Generator, pts: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Each glyph gets its own size (+-6%) and slant (+-0.08) around its foot: no two letters alike."""
    counts = np.maximum(np.bincount(owner, minlength=n), 1)
    foot = np.stack([np.bincount(owner, pts[:, 0], minlength=n) / counts, np.zeros(n)], axis=1)[owner]
    rel = (pts - foot) * rng.normal(1.0, 0.06, n)[owner, None]
    rel[:, 0] -= rng.normal(0.0, 0.08, n)[owner] * rel[:, 1]
    return foot + rel


def word_ids(text: str) -> np.ndarray:
    """The word index of each character (a space belongs to the word before it)."""
    return np.cumsum([0] + [c == " " for c in text[:-1]]) if text else np.zeros(0, dtype=int)


def _drift_words(rng: np.random.Generator, pts: np.ndarray, owner: np.ndarray, text: str, xh: float,
                 amount: float) -> np.ndarray:
    """Each word its own baseline shift (+-0.1 x-height), size (+-7%) and slant (+-0.1) around its left foot,
    scaled by ``amount``: hands drift word by word, not only per line."""
    words = word_ids(text)[owner]
    n = int(words.max()) + 1
    foot = np.zeros((n, 2))
    foot[:, 0] = np.inf
    np.minimum.at(foot[:, 0], words, pts[:, 0])
    rel = pts - foot[words]
    rel *= rng.normal(1.0, 0.07 * amount, n)[words, None]
    rel[:, 0] -= rng.normal(0.0, 0.1 * amount, n)[words] * rel[:, 1]
    rel[:, 1] += rng.normal(0.0, 0.1 * amount * xh, n)[words]
    return foot[words] + rel


def _draw_strokes(image: Image.Image, pts: np.ndarray, bounds: np.ndarray, pen: int, shades: np.ndarray) -> None:
    """Pen strokes ``pts[bounds[k]:bounds[k+1]]`` with round ends and round joins where they turn sharply.

    Pillow's ``joint="curve"`` costs a Python-level pie slice per vertex; Hershey curves have many gentle
    vertices where square segment ends do not show, so dots go only on ends and turns over ~35 degrees.
    """
    draw = ImageDraw.Draw(image)
    for k, shade in enumerate(shades.tolist()):
        if bounds[k + 1] - bounds[k] > 1:
            draw.line(pts[bounds[k] : bounds[k + 1]].ravel().tolist(), fill=shade, width=pen)
    if pen <= 2:
        return
    owner = np.repeat(np.arange(len(shades)), np.diff(bounds))
    seg = np.diff(pts, axis=0)
    unit = seg / (np.linalg.norm(seg, axis=1, keepdims=True) + 1e-9)
    dot = np.ones(len(pts), dtype=bool)  # ends of strokes stay True
    inner = (owner[:-2] == owner[1:-1]) & (owner[1:-1] == owner[2:])
    dot[1:-1] = ~inner | ((unit[:-1] * unit[1:]).sum(axis=1) < 0.82)
    r = pen / 2
    for (x, y), k in zip(pts[dot].tolist(), owner[dot].tolist()):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=int(shades[k]))


# ---- font writers -----------------------------------------------------------------------------------------
def render_font(rng: np.random.Generator, text: str, writer: Writer, style: Style, xh: float) -> Image.Image:
    """Draw ``text`` character by character with a TTF/OTF font, then slant, rotate and warp it."""
    # Even sizes only: halves the glyph-cache warm-up, and the final resize hides a 2-point step anyway.
    size = max(4, 2 * round(xh / _font_x_height(writer.name) / 2))
    font = _truetype(writer.name, size)
    advances = np.array([font.getlength(c) for c in text])
    steps = advances + style.spacing * xh + rng.normal(0, 0.03 * xh, len(text))
    xs = np.concatenate([[0.0], np.cumsum(steps[:-1])])  # pen position of each character
    ys = _wobble(style, xs, xh) + rng.normal(0, 0.025 * xh, len(text))
    if style.word_jitter:
        ys += rng.normal(0.0, 0.1 * style.word_jitter * xh, len(text.split(" ")))[word_ids(text)]
    stroke = round(style.pen * xh / 30)
    placed = [(_glyph(writer.name, size, c, stroke), round(x), round(y)) for c, x, y in zip(text, xs, ys) if c != " "]
    # The canvas follows the glyphs' real boxes: swashes and deep descenders (Ecolier) overflow the
    # font's ascent/descent metrics. The pad leaves room for the elastic displacement.
    left = min(x + dx for (_, dx, _), x, _ in placed)
    top = min(y + dy for (_, _, dy), _, y in placed)
    right = max(x + dx + m.width for (m, dx, _), x, _ in placed)
    bottom = max(y + dy + m.height for (m, _, dy), _, y in placed)
    pad = int(0.15 * xh) + 2
    image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad))
    for (mask, dx, dy), x, y in placed:
        image.paste(style.ink, (x + dx - left + pad, y + dy - top + pad), mask)
    field = SmoothField(rng, style.warp_amp * xh, style.warp_len * xh)
    return warp(image, style, field, cell_width=max(8, round(1.25 * xh)), rows=2)


@lru_cache(maxsize=50_000)
def _glyph(name: str, size: int, ch: str, stroke: int) -> tuple[Image.Image, int, int]:
    """A glyph's coverage mask and its offset from the pen position on the baseline (drawn once, pasted often)."""
    if ch in _lacks_accents(name):
        return _accented_glyph(name, size, ch, stroke)
    font = _truetype(name, size)
    x0, y0, x1, y1 = font.getbbox(ch, anchor="ls", stroke_width=stroke)
    mask = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)))
    ImageDraw.Draw(mask).text((-x0, -y0), ch, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255)
    return mask, x0, y0


@cache
def _lacks_accents(name: str) -> frozenset[str]:
    """The French letters font ``name`` has no glyph for (Rufscript: all of them)."""
    return frozenset(missing_glyphs(ASSETS / "fonts" / name, FRENCH_LETTERS))


def _accented_glyph(name: str, size: int, ch: str, stroke: int) -> tuple[Image.Image, int, int]:
    """The base letter's glyph with the accent drawn over (or, a cedilla, under) it as a pen stroke."""
    base, mark = split_accent(ch)
    mask, x0, y0 = _glyph(name, size, base, stroke)
    xh = _font_x_height(name) * size
    ink = np.argwhere(np.asarray(mask) > 127)[:, ::-1].astype(np.float32) + (x0, y0)  # (x, y) from the pen
    top, centre = top_centre(ink, 0.0)
    lines = mark_strokes(mark, centre, top, 0.0, xh)
    pen = max(1, round(0.09 * xh) + stroke)
    pts = np.concatenate([ink, *lines])
    left, up = np.floor(pts.min(axis=0)).astype(int) - pen
    right, down = np.ceil(pts.max(axis=0)).astype(int) + pen
    out = Image.new("L", (int(right - left), int(down - up)))
    out.paste(mask, (x0 - left, y0 - up))
    draw = ImageDraw.Draw(out)
    for line in lines:
        draw.line([(x - left, y - up) for x, y in line.tolist()], fill=255, width=pen, joint="curve")
    return out, int(left), int(up)


def warp(image: Image.Image, style: Style, field: SmoothField, cell_width: int, rows: int) -> Image.Image:
    """Apply the line's stretch/slant/rotation and the elastic field in one bilinear mesh resample.

    Pillow's MESH costs ~8 us of Python per quad, so the mesh is coarse: ``rows`` cells high and about an
    x-height wide, while the field's wavelength is 2-5 x-heights; bilinear interpolation keeps it smooth.
    """
    w, h = image.size
    forward = _line_matrix(style)
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) @ forward.T
    origin = corners.min(axis=0)
    out_w, out_h = (int(v) for v in np.ceil(corners.max(axis=0) - origin))
    cell = (cell_width, -(-out_h // rows))
    gx = np.arange(0, out_w + cell[0], cell[0])
    gy = np.arange(0, out_h + cell[1], cell[1])
    nodes = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2).astype(np.float64)
    src = ((nodes + origin) @ np.linalg.inv(forward).T + field(nodes)).reshape(len(gy), len(gx), 2)
    return mesh_warp(image, (out_w, out_h), gx, gy, src)


# ---- one sample -------------------------------------------------------------------------------------------
def crop_to_ink(image: Image.Image) -> Image.Image:
    """Crop to the ink's bounding box."""
    # Relative threshold: thin strokes (Ecolier at small heights) never reach full ink, and a fixed one
    # would crop their faint ends.
    threshold = image.getextrema()[1] // 10
    return image.crop(image.point(lambda v: 255 if v > threshold else 0).getbbox() or (0, 0, 1, 1))


def fit_to_height(ink: Image.Image, height: int, margin: tuple[int, int, int, int]) -> np.ndarray:
    """Scale the cropped ink so that it plus ``margin`` (left, top, right, bottom, final pixels) is ``height`` tall.

    Margins are added after the resize so they are exact: no ascender, descender or end letter touches the edge.
    """
    left, top, right, bottom = margin
    inner = height - top - bottom
    w, h = ink.size
    scaled = ink.resize((max(1, round(w * inner / h)), inner), Image.BILINEAR)
    return np.pad(np.asarray(scaled), ((top, bottom), (left, right)))


def render_line(split: str, index: int, seed: int, height: int, options: Mapping[str, Any]) -> tuple[np.ndarray, str, int]:
    """The clean (noise-free) image, text and writer id of sample ``index``."""
    rng = np.random.default_rng(sample_seed(split, index, seed, height, options, stream=0))
    french = options.get("french", 0.0)
    if french and rng.random() < french:  # no draw without French lines: English-only data stays as it was
        text = french_line(rng, options["min_chars"], options["max_chars"])
    else:
        text = pick_text(rng, load_sentences(split), options["min_chars"], options["max_chars"])
    strokes, fonts = writer_pools(options)
    pool = strokes if rng.random() < options["stroke_fraction"] else fonts
    writer = pool[rng.integers(len(pool))]
    style = sample_style(rng, writer, options.get("distortion", 1.0))
    style = replace(style, pen=style.pen * options.get("pen_scale", 1.0), word_jitter=options.get("word_jitter", 0.0))
    # Stroke writers are drawn without antialiasing, so they are rendered larger and antialiased by the
    # downscale; fonts come antialiased, and a smaller canvas keeps their mesh warp cheap.
    scale = OVERSAMPLE if writer.kind == "stroke" else 1.0
    xh = scale * height * rng.uniform(0.3, 0.4)  # about the final x-height; the crop rescales the line
    render = render_strokes if writer.kind == "stroke" else render_font
    ink = crop_to_ink(render(rng, text, writer, style, xh))
    margin = tuple(max(1, round(m * height)) for m in style.margin)
    image = fit_to_height(ink, height, margin)
    return set_ink_peak(blur(image, style.blur), style.ink), text, WRITERS.index(writer)


def set_ink_peak(image: np.ndarray, ink: int) -> np.ndarray:
    """Scale so the darkest ink reads ``ink``: thin strokes at small heights would otherwise fade to grey."""
    peak = int(image.max())
    if peak == 0:
        return image
    return np.clip(image.astype(np.float32) * (ink / peak) + 0.5, 0, 255).astype(np.uint8)


def blur(image: np.ndarray, amount: float) -> np.ndarray:
    """Separable 3-tap blur [a, 1-2a, a], a = ``amount`` (Gaussian-like up to sigma ~0.7 px; 5x cheaper than
    Pillow's GaussianBlur on a line)."""
    if amount <= 0:
        return np.ascontiguousarray(image, dtype=np.uint8)
    img = image.astype(np.float32)
    for axis in (0, 1):
        padded = np.pad(img, [(1, 1) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        lo, hi = [slice(None)] * 2, [slice(None)] * 2
        lo[axis], hi[axis] = slice(0, -2), slice(2, None)
        img = (1 - 2 * amount) * img + amount * (padded[tuple(lo)] + padded[tuple(hi)])
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def add_paper(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paper texture on a clean line: a slightly bright background, grain, and ink that does not fully cover."""
    background = rng.uniform(0, 30)
    grain = rng.uniform(2, 12)
    img = clean.astype(np.float32) * (1 - background / 255) + background
    img += rng.standard_normal(clean.shape, dtype=np.float32) * grain
    return np.clip(img, 0, 255).astype(np.uint8)


# ---- caching and the dataset ------------------------------------------------------------------------------
def generate(split: str, size: int, seed: int, height: int, options: Mapping[str, Any], workers: int = 1,
             progress: bool = True, chunk: int = 64) -> list[tuple[np.ndarray, str, int]]:
    """Render samples 0..size-1 in order; identical for any ``workers`` since each sample seeds itself."""
    return generate_split(render_line, split, size, seed, height, options, "synth-lines", "line", chunk, workers,
                          progress)


def cache_root(cfg: DataConfig) -> Path:
    return cache_home(cfg.cache_dir) / "synth-lines" / f"v{GENERATOR_VERSION}"


def pack(samples: list[tuple[np.ndarray, str, int]]) -> dict[str, np.ndarray]:
    """The cache arrays: one flat uint8 pixel buffer + widths + writer indices + newline-joined texts."""
    return {
        "pixels": np.concatenate([img.ravel() for img, _, _ in samples]) if samples else np.zeros(0, np.uint8),
        "widths": np.array([img.shape[1] for img, _, _ in samples], dtype=np.int32),
        "writers": np.array([w for _, _, w in samples], dtype=np.int16),
        "texts": np.frombuffer("\n".join(t for _, t, _ in samples).encode("utf-8"), dtype=np.uint8),
    }


def unpack(data: dict[str, np.ndarray], height: int) -> dict[str, Any]:
    """The cached arrays as the dataset reads them, checked for consistent sizes (ValueError when not)."""
    texts = data["texts"].tobytes().decode("utf-8").split("\n") if len(data["widths"]) else []
    if len(texts) != len(data["widths"]) or data["pixels"].size != height * int(data["widths"].sum()):
        raise ValueError("cache arrays have inconsistent sizes")
    offsets = np.concatenate([[0], np.cumsum(data["widths"].astype(np.int64) * height)])
    return {"pixels": data["pixels"], "offsets": offsets, "widths": data["widths"], "texts": texts,
            "writers": data["writers"]}


class SynthLines(Dataset):
    """Split ``split`` of synth-lines: ``cfg.size_of(split)`` lines of height ``cfg.height``.

    The split is rendered (and cached on disk) on first access; see the module docstring for the options.
    """

    def __init__(self, split: str, cfg: DataConfig):
        if split not in ("train", "val", "test"):
            raise UserError(f"synth-lines has splits train, val, test; got {split!r}")
        self.split, self.cfg = split, cfg
        self.options = parse_options(cfg.options)
        self.size = cfg.size_of(split)
        french = bool(self.options.get("french"))
        self.key_info = {"version": GENERATOR_VERSION, "split": split, "size": self.size, "seed": cfg.seed,
                         "height": cfg.height, "options": self.options, "assets": assets_digest(split, french)}
        self.cache_path = cache_root(cfg) / f"{split}-{_stable_int(self.key_info):016x}.npz"
        # what a leaderboard must not merge across: the generator and the assets it draws from
        self.version = f"{GENERATOR_VERSION}.{assets_digest(split, french)[:8]}"
        # French lines write accented letters: the model needs their classes (else the default, IAM's)
        self.charset = Charset(IAM_CHARS + FRENCH_LETTERS) if french else None
        self._data: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> LineSample:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} lines")
        data = self._load()
        clean = self._clean(index)
        rng = np.random.default_rng(sample_seed(self.split, index, self.cfg.seed, self.cfg.height, self.options, 1))
        writer = WRITERS[int(data["writers"][index])].name
        return LineSample(self._on_paper(clean, index, rng), data["texts"][index], {"writer": writer, "index": index})

    def _on_paper(self, clean: np.ndarray, index: int, rng: np.random.Generator) -> np.ndarray:
        """The clean line as read: v3's grey grain, or (options) neighbouring lines and a scanned sheet."""
        share = self.options.get("neighbours", 0.0)
        if share and rng.random() < share:  # no draw at 0: v3's grain stays as it was
            clean = add_neighbours(clean, self._clean((index - 1) % self.size), self._clean((index + 1) % self.size),
                                   rng)
        return add_scan_paper(clean, rng) if self.options.get("paper") == "scan" else add_paper(clean, rng)

    def _clean(self, index: int) -> np.ndarray:
        data = self._load()
        a, b = data["offsets"][index], data["offsets"][index + 1]
        return data["pixels"][a:b].reshape(self.cfg.height, -1)

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self._read_or_generate()
        return self._data

    def _read_or_generate(self) -> dict[str, Any]:
        def render() -> dict[str, np.ndarray]:
            workers = pool_size(self.size, PARALLEL_MIN_SIZE)
            return pack(generate(self.split, self.size, self.cfg.seed, self.cfg.height, self.options, workers))

        return load_or_generate(self.cache_path, self.key_info, render, lambda a: unpack(a, self.cfg.height),
                                "synth-lines")


@register_dataset(
    "synth-lines",
    generated=True,
    description="Synthetic handwriting lines (Hershey stroke fonts + handwriting TTFs, public-domain text); "
    "embedded, no download",
    license="Text: public domain (Jane Austen's novels, from Debian's r-cran-janeaustenr); with option french, "
    "also a French word-frequency list (PyPI wordfreq, CC BY-SA 4.0). Fonts: OFL-1.1, "
    "GPL with font exception, Hershey license; see ocrbench/datasets/assets/README.md",
)
def synth_lines(split: str, cfg: DataConfig) -> SynthLines:
    return SynthLines(split, cfg)
