"""The page model both XML parsers produce (:class:`Page` of :class:`TextLine`, page-pixel coordinates), the
small namespace-agnostic XML helpers they share, and finding a page's image."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ...errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".jp2")


@dataclass
class TextLine:
    """One text line of a page; coordinates in page pixels, ``bbox`` is ``(x0, y0, x1, y1)``."""

    id: str
    polygon: list[tuple[float, float]]
    bbox: tuple[float, float, float, float]
    baseline: list[tuple[float, float]] | None
    text: str
    line_type: str | None  # e.g. 'Handwritten', 'Print' (the part after ':' of the label)
    label: str | None = None  # the full type label as written in the file, e.g. 'DefaultLine:Handwritten'


@dataclass
class Page:
    image_path: Path
    width: int
    height: int
    lines: list[TextLine]
    xml_path: Path | None = None
    format: str = ""  # "alto" or "page"


# ---- small XML helpers ------------------------------------------------------------------------------------
def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if local_name(c.tag) == name]


def child(elem: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in elem if local_name(c.tag) == name), None)


def descendants(elem: ET.Element, name: str) -> Iterable[ET.Element]:
    return (e for e in elem.iter() if local_name(e.tag) == name)


def parse_points(text: str | None) -> list[tuple[float, float]]:
    """``"x1,y1 x2,y2"`` or ``"x1 y1 x2 y2"`` → [(x1, y1), (x2, y2)]."""
    nums = [float(v) for v in re.split(r"[\s,]+", (text or "").strip()) if v]
    if len(nums) % 2:
        raise ValueError(f"odd number of coordinates in {text[:60]!r}")
    return list(zip(nums[0::2], nums[1::2]))


def bbox_of(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def box_polygon(b: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    return [(b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3])]


def parse_xml(xml_path: Path, root_name: str, kind: str) -> ET.Element:
    """The root element of ``xml_path``, which must be ``<root_name>`` (namespace aside): a file of another
    ``kind`` than expected is one clear error, as is an unreadable or malformed one."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise DataError(f"cannot parse {xml_path}: {e}") from None
    if local_name(root.tag) != root_name:
        raise DataError(f"{xml_path} is not {kind} file (root element <{local_name(root.tag)}>)")
    return root


def find_image(xml_path: Path, file_name: str | None) -> Path:
    """The page image of ``xml_path``: the file the XML names, else an image with the same stem, in the
    XML's folder or its parent (eScriptorium/Transkribus put PAGE files in a ``page/`` subfolder)."""
    folders = [xml_path.parent, xml_path.parent.parent]
    if file_name:
        name = Path(file_name.replace("\\", "/")).name
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
    for folder in folders:
        for suffix in IMAGE_SUFFIXES:
            for cand in (folder / (xml_path.stem + suffix), folder / (xml_path.stem + suffix.upper())):
                if cand.is_file():
                    return cand
    return xml_path.parent / (Path(file_name).name if file_name else xml_path.stem + ".jpg")


def image_size_if_readable(path: Path) -> tuple[int, int] | None:
    """The image's size, or None when it is missing or unreadable (reported when its pixels are needed)."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        return None


def image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read page image {path}: {e}") from None
