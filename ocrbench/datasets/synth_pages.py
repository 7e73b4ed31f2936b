"""``synth-pages``: synthetic handwritten pages with exact line boxes, composed from the synth-lines writers.

A page is laid out like a letter or a notebook page: margins, one to several paragraphs (first-line indent,
ragged last line), a line pitch drawn per page (log-uniform, dense forms to large letter writing), a small
page skew, and either one writer for the whole page or a new writer per paragraph. Each line is written
by :mod:`ocrbench.datasets.synth_lines`' stroke or font writers (its ``sample_style``, ``render_strokes``,
``render_font``), at the page's x-height, and pasted with ``max`` so that touching ascenders and descenders
of neighbouring lines merge as real ink does. The ground-truth box of a line is the bounding box of **its
own** ink (before merging), in page pixels, ``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive.

Distractors that must *not* be detected: bleed-through (the page's own ink mirrored, shifted and faint),
small marks (page numbers, ticks), a paper-illumination gradient and grain.

Like synth-lines, every page is a pure function of ``(PAGES_VERSION, synth-lines GENERATOR_VERSION, split,
index, cfg.seed, cfg.height, options)``; a split is rendered once and cached as one ``.npz`` under
``<cache>/synth-pages/v<PAGES_VERSION>-<GENERATOR_VERSION>/``; the paper (background, gradient, grain) is
added at access time, seeded the same way. Text comes from the split's own sentences, so test pages share
no sentence with training pages. ``cfg.height`` is the page height in pixels (pages are portrait: the width
is ``aspect * height``).

Options (``DataConfig.options``):
    aspect ([0.62, 0.85]): page width / height range.
    pitch ([0.03, 0.09]): line pitch as a fraction of the page height (log-uniform): 33 to 11 lines per
        page height. The two real ALTO letters have about 0.065.
    one_writer (0.5): probability that one writer writes the whole page (else one per paragraph).
    bleed (0.3): probability of bleed-through from the other side of the sheet.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..config import DataConfig
from ..data.cache import cache_home, generate_split, load_or_generate, pool_size
from ..data.registry import register_dataset, resolve_options
from ..data.samples import PageSample
from ..errors import UserError
from . import synth_lines as sl

PAGES_VERSION = 2  # bump whenever a change alters any generated page, box or text
DEFAULT_OPTIONS = {"aspect": (0.62, 0.85), "pitch": (0.03, 0.09), "one_writer": 0.5, "bleed": 0.3}
MIN_HEIGHT = 128  # below this a line would be a few pixels high
PARALLEL_MIN_SIZE = 400  # pages; below this, starting worker processes costs more than it saves
INK_THRESHOLD = 0.2  # a pixel belongs to a line's box when brighter than this fraction of the line's peak
WIDE_GAP = 0.3  # share of lines with one or two wide word gaps (1-3 x-heights), as real letters have


# ---- options and seeds ------------------------------------------------------------------------------------
def parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``DataConfig.options`` of synth-pages over :data:`DEFAULT_OPTIONS`, checked and normalised."""
    opts = resolve_options("synth-pages", options, DEFAULT_OPTIONS)
    for key in ("aspect", "pitch"):
        lo, hi = (float(v) for v in opts[key])
        if not 0 < lo <= hi:
            raise UserError(f"synth-pages option {key} must be [low, high] with 0 < low <= high, got {opts[key]}")
        opts[key] = (lo, hi)
    return opts


def page_seed(split: str, index: int, seed: int, height: int, options: Mapping[str, Any], stream: int) -> list[int]:
    """Entropy for one page's rng; ``stream`` 0 lays out and renders, 1 draws the paper."""
    opts = sl._stable_int({k: list(v) if isinstance(v, tuple) else v for k, v in options.items()})
    return [PAGES_VERSION, sl.GENERATOR_VERSION, zlib.crc32(split.encode()), index, seed, height, opts, stream]


# ---- one line at page scale -------------------------------------------------------------------------------
def render_page_line(rng: np.random.Generator, text: str, writer: sl.Writer, style: sl.Style,
                     xh: float) -> np.ndarray:
    """``text`` written by ``writer`` at x-height ``xh`` page pixels: uint8, ink bright, cropped to the ink
    with a one-pixel border."""
    scale = sl.OVERSAMPLE if writer.kind == "stroke" else 1.0
    render = sl.render_strokes if writer.kind == "stroke" else sl.render_font
    image = _crop_to_ink(render(rng, text, writer, style, xh * scale), border=1)
    if scale != 1.0:
        w, h = image.size
        image = image.resize((max(1, round(w / scale)), max(1, round(h / scale))), Image.BILINEAR)
    line = sl.blur(np.asarray(image), style.blur * 0.5)
    peak = int(line.max())  # thin strokes fade when downscaled: restore the writer's ink level
    if peak:
        line = np.clip(line.astype(np.float32) * (style.ink / peak) + 0.5, 0, 255).astype(np.uint8)
    return line


def _crop_to_ink(image: Image.Image, border: int) -> Image.Image:
    """Crop to the ink (above a tenth of its peak, so faint thin strokes are kept) plus ``border`` pixels."""
    threshold = image.getextrema()[1] // 10
    x0, y0, x1, y1 = image.point(lambda v: 255 if v > threshold else 0).getbbox() or (0, 0, 1, 1)
    return image.crop((x0 - border, y0 - border, x1 + border, y1 + border))


def ink_box(line: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(x0, y0, x1, y1)`` (exclusive ends) of a line image's ink, or None if it has none."""
    peak = int(line.max())
    if peak == 0:
        return None
    mask = line > max(24, INK_THRESHOLD * peak)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# ---- layout -----------------------------------------------------------------------------------------------
class _WordStream:
    """Consecutive words of consecutive sentences from a random place in the split's text."""

    def __init__(self, rng: np.random.Generator, sentences: tuple[str, ...]):
        self.rng, self.sentences = rng, sentences
        self.k = int(rng.integers(len(sentences)))
        self.words: list[str] = []

    def take(self, n_chars: int) -> str:
        """Whole words up to about ``n_chars`` characters (at least one word)."""
        out: list[str] = []
        length = 0
        while True:
            if not self.words:
                self.words = self.sentences[self.k % len(self.sentences)].split()
                self.k += 1
            word = self.words[0]
            if out and length + 1 + len(word) > n_chars:
                return " ".join(out)
            out.append(self.words.pop(0))
            length += len(word) + (1 if len(out) > 1 else 0)


@dataclass
class _Hand:
    """A writer and its base style on this page. Writers' proportions differ (a line is 2.4 to 5.7 x-heights
    tall), so the x-height ``xh`` is corrected after the first line to give the page's line height, and the
    width per character ``char_w`` is learnt as lines go."""

    writer: sl.Writer
    style: sl.Style
    xh: float
    char_w: float
    calibrated: bool = False


def _new_hand(rng: np.random.Generator, line_h: float, skew: float) -> _Hand:
    pool = sl.STROKE_WRITERS if rng.random() < 0.5 else sl.FONT_WRITERS
    writer = pool[rng.integers(len(pool))]
    style = replace(sl.sample_style(rng, writer), rotation=skew)
    xh = line_h / 3.3
    return _Hand(writer, style, xh, 1.0 * xh * style.x_scale)


def _line_style(rng: np.random.Generator, hand: _Hand) -> sl.Style:
    """Small line-to-line variation of one writer: rotation and baseline wobble phase."""
    return replace(hand.style, rotation=hand.style.rotation + float(rng.normal(0, 0.4)),
                   wobble_phase=float(rng.uniform(0, 2 * math.pi)))


def _render_text(rng: np.random.Generator, text: str, hand: _Hand) -> np.ndarray:
    """One line by ``hand``; some lines are written in two or three pieces with wide gaps between words,
    the pieces aligned on their ink's centre of mass (the x-height band holds most of the ink)."""
    style = _line_style(rng, hand)
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces or rng.random() >= WIDE_GAP:
        return render_page_line(rng, text, hand.writer, style, hand.xh)
    cuts = sorted(int(c) for c in rng.choice(spaces, size=min(len(spaces), int(rng.integers(1, 3))), replace=False))
    parts = [text[a:b].strip() for a, b in zip([0, *cuts], [*cuts, len(text)])]
    pieces = [render_page_line(rng, p, hand.writer, style, hand.xh) for p in parts if p]
    centres = [float((p.sum(axis=1) * np.arange(p.shape[0])).sum() / max(1.0, float(p.sum()))) for p in pieces]
    above = max(round(c) for c in centres)
    below = max(p.shape[0] - round(c) for p, c in zip(pieces, centres))
    gaps = [round(hand.xh * rng.uniform(1.0, 3.0)) for _ in pieces[1:]]
    canvas = np.zeros((above + below, sum(p.shape[1] for p in pieces) + sum(gaps)), dtype=np.uint8)
    x = 0
    for p, c, gap in zip(pieces, centres, [0, *gaps]):
        x += gap
        y = above - round(c)
        np.maximum(canvas[y:y + p.shape[0], x:x + p.shape[1]], p, out=canvas[y:y + p.shape[0], x:x + p.shape[1]])
        x += p.shape[1]
    return canvas


def _write_line(rng: np.random.Generator, words: _WordStream, hand: _Hand, line_h: float, avail: float,
                fill: float) -> tuple[np.ndarray, str]:
    """Render about ``fill * avail`` pixels of text; re-wrap with fewer characters if it overflows."""
    n_chars = max(1, int(fill * avail / hand.char_w))
    text = words.take(n_chars)
    for _ in range(4):
        line = _render_text(rng, text, hand)
        if not hand.calibrated and len(text) >= 8:
            hand.calibrated = True
            if abs(line.shape[0] / line_h - 1) > 0.15:  # this writer's proportions: draw it again, resized
                hand.xh *= line_h / line.shape[0]
                hand.char_w *= line_h / line.shape[0]
                continue
        hand.char_w = 0.5 * hand.char_w + 0.5 * line.shape[1] / max(1, len(text))
        if line.shape[1] <= avail or " " not in text:
            break
        keep = max(1, int(len(text) * avail / line.shape[1]) - 1)
        cut = text[:keep].rfind(" ")
        if cut <= 0:
            cut = text.find(" ")
        words.words[:0] = text[cut + 1:].split()  # put the rest back
        text = text[:cut]
    if line.shape[1] > avail:  # one word wider than the text block: squeeze it
        line = np.asarray(Image.fromarray(line).resize((max(1, int(avail)), line.shape[0]), Image.BILINEAR))
    return line, text


def render_page(split: str, index: int, seed: int, height: int, options: Mapping[str, Any]
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The clean (paper-free) page image, its line boxes (N, 4) and texts, for page ``index``."""
    rng = np.random.default_rng(page_seed(split, index, seed, height, options, stream=0))
    sentences = sl.load_sentences(split)
    H = height
    W = round(H * rng.uniform(*options["aspect"]))
    pitch = H * math.exp(rng.uniform(*np.log(options["pitch"])))
    line_h = pitch * rng.uniform(0.7, 1.15)  # ink height of a line; above ~1 neighbours' ascenders and descenders touch
    left, right = W * rng.uniform(0.04, 0.15), W * rng.uniform(0.03, 0.12)
    top, bottom = H * rng.uniform(0.03, 0.15), H * rng.uniform(0.03, 0.1)
    skew = float(np.clip(rng.normal(0, 1.0), -3, 3))  # degrees, the whole sheet
    page = np.zeros((H, W), dtype=np.uint8)
    boxes, texts = [], []
    one_writer = rng.random() < options["one_writer"]
    hand = _new_hand(rng, line_h, skew)
    words = _WordStream(rng, sentences)
    y = top
    block = W - left - right
    while y + pitch < H - bottom:
        if not one_writer and boxes:
            hand = _new_hand(rng, line_h, skew)
        n_lines = int(rng.integers(1, 9))
        short_block = rng.random() < 0.15  # an address, a heading or a signature: short lines, anywhere
        for k in range(n_lines):
            if y + pitch >= H - bottom:
                break
            indent = block * rng.uniform(0.03, 0.2) if (k == 0 and rng.random() < 0.5) else 0.0
            if short_block:
                indent = block * rng.uniform(0, 0.6)
            avail = block - indent
            last = k == n_lines - 1
            fill = rng.uniform(0.15, 0.5) if short_block else (rng.uniform(0.2, 0.9) if last else rng.uniform(0.85, 1.0))
            line, text = _write_line(rng, words, hand, line_h, avail, fill)
            x = left + indent + rng.normal(0, 0.05 * line_h)
            # Centre the line's ink on its ruling; follow the sheet's skew across the page.
            yc = y + pitch / 2 - (x + line.shape[1] / 2 - W / 2) * math.tan(math.radians(skew)) + rng.normal(0, 0.08 * pitch)
            placed = _paste(page, line, round(x), round(yc - line.shape[0] / 2))
            if placed is not None:
                boxes.append(placed)
                texts.append(text)
            y += pitch * rng.uniform(0.92, 1.08)
        y += pitch * rng.uniform(0.0, 1.2)  # paragraph gap (sometimes none)
    _add_marks(rng, page, line_h / 3)
    return page, np.asarray(boxes, dtype=np.float32).reshape(-1, 4), texts


def _paste(page: np.ndarray, line: np.ndarray, x: int, y: int) -> tuple[float, float, float, float] | None:
    """Max-composite ``line`` at (x, y), clipped to the page; returns the box of its ink on the page."""
    H, W = page.shape
    box = ink_box(line)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    # keep the line's ink inside the page (a line cut by the border would have a wrong box)
    x = min(max(x, -x0), W - x1)
    y = min(max(y, -y0), H - y1)
    h, w = line.shape
    sy, sx = slice(max(0, y), min(H, y + h)), slice(max(0, x), min(W, x + w))
    src = line[sy.start - y: sy.stop - y, sx.start - x: sx.stop - x]
    np.maximum(page[sy, sx], src, out=page[sy, sx])
    return float(x + x0), float(y + y0), float(x + x1), float(y + y1)


def _add_marks(rng: np.random.Generator, page: np.ndarray, xh: float) -> None:
    """A few small marks that are not text lines: ticks, dots, short dashes, page numbers' strokes."""
    from PIL import ImageDraw

    H, W = page.shape
    n = int(rng.integers(0, 3)) if rng.random() < 0.5 else 0
    if not n:
        return
    im = Image.fromarray(page)
    draw = ImageDraw.Draw(im)
    for _ in range(n):
        size = xh * rng.uniform(0.8, 2.5)
        cx, cy = rng.uniform(0.02, 0.98) * W, rng.uniform(0.01, 0.2 if rng.random() < 0.7 else 0.99) * H
        pts = [(cx + size * rng.uniform(-0.5, 0.5), cy + size * rng.uniform(-0.5, 0.5)) for _ in range(int(rng.integers(2, 4)))]
        draw.line(pts, fill=int(rng.integers(150, 256)), width=max(1, round(xh * rng.uniform(0.1, 0.2))))
    page[:] = np.asarray(im)


# ---- paper (added at access time) -------------------------------------------------------------------------
def add_paper(clean: np.ndarray, rng: np.random.Generator, bleed: bool) -> np.ndarray:
    """Paper on a clean page: bleed-through, a background with an illumination gradient, grain."""
    H, W = clean.shape
    img = clean.astype(np.float32)
    if bleed:  # the other side's ink, mirrored and shifted, faint and soft
        other = np.roll(clean[:, ::-1], int(rng.integers(-H // 20, H // 20 + 1)), axis=0).astype(np.float32)
        other = np.asarray(Image.fromarray(other.astype(np.uint8)).resize((max(1, W // 2), max(1, H // 2)),
                                                                          Image.BILINEAR).resize((W, H), Image.BILINEAR))
        img = np.maximum(img, other * rng.uniform(0.1, 0.3))
    level = rng.uniform(0, 45)
    gy, gx = np.linspace(-1, 1, H, dtype=np.float32)[:, None], np.linspace(-1, 1, W, dtype=np.float32)[None, :]
    gradient = level * (1 + 0.3 * (rng.uniform(-1, 1) * gx + rng.uniform(-1, 1) * gy))
    img = img * (1 - level / 255) + gradient
    img += rng.standard_normal((H, W), dtype=np.float32) * rng.uniform(2, 10)
    return np.clip(img, 0, 255).astype(np.uint8)


# ---- caching and the dataset ------------------------------------------------------------------------------
def generate(split: str, size: int, seed: int, height: int, options: Mapping[str, Any], workers: int = 1,
             progress: bool = True, chunk: int = 16) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """Render pages 0..size-1 in order; identical for any ``workers`` since each page seeds itself."""
    return generate_split(render_page, split, size, seed, height, options, "synth-pages", "page", chunk, workers,
                          progress)


def cache_root(cfg: DataConfig) -> Path:
    return cache_home(cfg.cache_dir) / "synth-pages" / f"v{PAGES_VERSION}-{sl.GENERATOR_VERSION}"


def pack(pages: list[tuple[np.ndarray, np.ndarray, list[str]]]) -> dict[str, np.ndarray]:
    """The cache arrays: flat pixel buffer + widths, flat boxes + counts per page, newline-joined texts."""
    return {
        "pixels": np.concatenate([p.ravel() for p, _, _ in pages]) if pages else np.zeros(0, np.uint8),
        "widths": np.array([p.shape[1] for p, _, _ in pages], dtype=np.int32),
        "boxes": np.concatenate([b for _, b, _ in pages]) if pages else np.zeros((0, 4), np.float32),
        "counts": np.array([len(b) for _, b, _ in pages], dtype=np.int32),
        "texts": np.frombuffer("\n".join(t for _, _, ts in pages for t in ts).encode("utf-8"), dtype=np.uint8),
    }


def unpack(data: dict[str, np.ndarray], height: int) -> dict[str, Any]:
    """The cached arrays as the dataset reads them, checked for consistent sizes (ValueError when not)."""
    n_lines = int(data["counts"].sum())
    texts = data["texts"].tobytes().decode("utf-8").split("\n") if n_lines else []
    if (len(texts) != n_lines or len(data["boxes"]) != n_lines
            or data["pixels"].size != height * int(data["widths"].sum())):
        raise ValueError("cache arrays have inconsistent sizes")
    return {"pixels": data["pixels"], "widths": data["widths"], "boxes": data["boxes"], "texts": texts,
            "offsets": np.concatenate([[0], np.cumsum(data["widths"].astype(np.int64) * height)]),
            "line_offsets": np.concatenate([[0], np.cumsum(data["counts"])])}


class SynthPages(Dataset):
    """Split ``split`` of synth-pages: ``cfg.size_of(split)`` pages ``cfg.height`` pixels high."""

    def __init__(self, split: str, cfg: DataConfig):
        if split not in ("train", "val", "test"):
            raise UserError(f"synth-pages has splits train, val, test; got {split!r}")
        if cfg.height < MIN_HEIGHT:
            raise UserError(f"synth-pages: data.height is the page height in pixels and must be >= {MIN_HEIGHT} "
                            f"(got {cfg.height}); e.g. --set data.height=512")
        self.split, self.cfg = split, cfg
        self.options = parse_options(cfg.options)
        self.size = cfg.size_of(split)
        self.key_info = {"version": PAGES_VERSION, "lines_version": sl.GENERATOR_VERSION, "split": split,
                         "size": self.size, "seed": cfg.seed, "height": cfg.height,
                         "options": {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()},
                         "assets": sl.assets_digest(split)}
        self.cache_path = cache_root(cfg) / f"{split}-{sl._stable_int(self.key_info):016x}.npz"
        self._data: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> PageSample:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} pages")
        data = self._load()
        a, b = data["offsets"][index], data["offsets"][index + 1]
        clean = data["pixels"][a:b].reshape(self.cfg.height, -1)
        la, lb = data["line_offsets"][index], data["line_offsets"][index + 1]
        rng = np.random.default_rng(page_seed(self.split, index, self.cfg.seed, self.cfg.height, self.options, 1))
        image = add_paper(clean, rng, bleed=rng.random() < self.options["bleed"])
        return PageSample(image, data["boxes"][la:lb].copy(), data["texts"][la:lb], {"index": index})

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self._read_or_generate()
        return self._data

    def _read_or_generate(self) -> dict[str, Any]:
        def render() -> dict[str, np.ndarray]:
            workers = pool_size(self.size, PARALLEL_MIN_SIZE)
            return pack(generate(self.split, self.size, self.cfg.seed, self.cfg.height, self.options, workers))

        return load_or_generate(self.cache_path, self.key_info, render, lambda a: unpack(a, self.cfg.height),
                                "synth-pages")


@register_dataset(
    "synth-pages",
    task="pages",
    generated=True,
    description="Synthetic handwritten pages with exact line boxes, composed from the synth-lines writers; "
    "embedded, no download",
    license="Text: public domain (Jane Austen's novels, from Debian's r-cran-janeaustenr). Fonts: OFL-1.1, GPL with font exception, Hershey "
    "license; see ocrbench/datasets/assets/README.md",
)
def synth_pages(split: str, cfg: DataConfig) -> SynthPages:
    return SynthPages(split, cfg)
