"""Pages in: image files of any size or mode as grayscale arrays, and real pages (XML + scan) with their
reference lines."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..data.images import to_ink_bright
from ..data.samples import PageSample, resize_page
from ..datasets.xml_pages import apply_conventions, load_page_image, read_page
from ..datasets.xml_pages.conventions import STRIKETHROUGH, SUPERSCRIPT
from ..errors import DataError

MAX_PIXELS = 1_000_000_000  # refuse only absurd images (Pillow's own bomb guard stops at ~179 MP)
WORK_SIDE = 4000  # pages are decoded at most this long: plenty for 32-64 px line crops, cheap to handle


def load_image(path: str | Path, max_side: int = WORK_SIDE) -> np.ndarray:
    """An image file as uint8 grayscale, as stored (a scan has dark ink), its long side at most ``max_side``.

    Any Pillow-readable format and mode: RGB(A) and LA are put on white, palette and CMYK converted, 16/32-bit
    rescaled; EXIF orientation applied; JPEGs larger than ``max_side`` are decoded at a reduced scale.
    Raises :class:`DataError` naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
    try:
        with Image.open(path) as im:
            if max(im.size) > max_side:
                im.draft("L", (max(1, im.size[0] * max_side // max(im.size)), max(1, im.size[1] * max_side // max(im.size))))
            im = ImageOps.exif_transpose(im)
            gray = _to_gray(im)
    except Exception as e:  # truncated, not an image, unsupported mode...
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if max(gray.shape) > max_side:
        gray, _, _ = resize_page(gray, np.zeros((0, 4), np.float32), max_side)
    return gray


def stored_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file as displayed (EXIF orientation applied), without decoding it."""
    with Image.open(path) as im:
        w, h = im.size
        rotated = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # orientations that turn the image by 90°
    return (h, w) if rotated else (w, h)


def _to_gray(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        return ((a - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("L"))


def page_sample_from_xml(xml_path: str | Path, line_types: Iterable[str] | None = None,
                         superscript: str = SUPERSCRIPT, strikethrough: str = STRIKETHROUGH) -> PageSample:
    """A real page (ALTO or PAGE XML and its image) as an ink-bright :class:`PageSample` at full resolution;
    ``line_types`` keeps only those types (e.g. ``["Handwritten"]``); the transcription conventions are
    applied as in the line datasets (``xml_pages.apply_conventions``)."""
    page = read_page(xml_path)
    types = {t.lower() for t in line_types} if line_types else None
    lines = [ln for ln in page.lines if types is None or (ln.line_type or "").lower() in types]
    image = to_ink_bright(load_page_image(page), "dark")
    sy, sx = image.shape[0] / page.height, image.shape[1] / page.width
    boxes = np.array([[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in (ln.bbox for ln in lines)],
                     dtype=np.float32).reshape(-1, 4)
    texts = [apply_conventions(ln.text, superscript, strikethrough) for ln in lines]
    return PageSample(image, boxes, texts, {"xml": str(xml_path), "image": str(page.image_path)})
