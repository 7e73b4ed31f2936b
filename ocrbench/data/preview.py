"""Contact sheets: a grid of line images with their transcriptions, for looking at a dataset."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_SIZE = 16  # points of the caption font
PAD = 8  # pixels between cells


def _caption_font() -> ImageFont.ImageFont:
    # DejaVu Sans from matplotlib (a dependency) has the accented letters of the real collections; Pillow's
    # default font (Aileron) prints them as boxes. Nothing is vendored for this either way.
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), LABEL_SIZE)
    except (ImportError, OSError):
        pass
    try:
        return ImageFont.load_default(size=LABEL_SIZE)
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _cell(image: np.ndarray, text: str, font: ImageFont.ImageFont, width: int) -> Image.Image:
    """One sample shown as scanned paper (dark ink on white), its text underneath."""
    line = Image.fromarray(255 - image)
    if line.width > width:  # shrink only; never crop, so clipping in the data itself stays visible
        line = line.resize((width, max(1, round(line.height * width / line.width))), Image.BILINEAR)
    text_w = int(font.getlength(text)) + 2
    cell = Image.new("L", (max(width, text_w), line.height + LABEL_SIZE + 10), 255)
    cell.paste(line, (0, 0))
    ImageDraw.Draw(cell).text((0, line.height + 4), text, fill=0, font=font)
    return cell


def write_contact_sheet(dataset, path: str | Path, n: int = 24, columns: int = 1) -> Path:
    """Draw the first ``n`` samples of ``dataset`` (LineSample items) in ``columns`` columns and save a PNG.

    Each cell shows the image as dark ink on white with its transcription printed under it, and a thin
    frame around the image so margins (and any clipped ascenders or descenders) can be judged.

    Returns:
        the path written.
    """
    n = min(n, len(dataset))
    samples = [dataset[i] for i in range(n)]
    font = _caption_font()
    width = max(max(s.image.shape[1] for s in samples), 200)
    text_width = max(int(font.getlength(s.text)) for s in samples)
    cells = [_frame(_cell(s.image, s.text, font, width), s.image.shape[1], width) for s in samples]
    col_w = max(width, text_width) + 2 * PAD
    rows = math.ceil(n / columns)
    row_h = [max(c.height for c in cells[r * columns : (r + 1) * columns]) + PAD for r in range(rows)]
    sheet = Image.new("L", (columns * col_w + PAD, sum(row_h) + PAD), 255)
    y = PAD
    for r in range(rows):
        for k, cell in enumerate(cells[r * columns : (r + 1) * columns]):
            sheet.paste(cell, (PAD + k * col_w, y))
        y += row_h[r]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def _frame(cell: Image.Image, image_width: int, max_width: int) -> Image.Image:
    """A light grey box around the image part of a cell."""
    w = min(image_width, max_width)
    h = cell.height - LABEL_SIZE - 10
    framed = Image.new("L", (cell.width + 2, cell.height + 2), 255)
    framed.paste(cell, (1, 1))
    ImageDraw.Draw(framed).rectangle((0, 0, w + 1, h + 1), outline=190)
    return framed
