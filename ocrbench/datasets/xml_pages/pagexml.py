"""PAGE XML files (2010-2019 schemas) to a :class:`~.page.Page` in image pixels (see the package docstring)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ...errors import DataError
from .page import (
    Page,
    TextLine,
    bbox_of,
    box_polygon,
    child,
    children,
    descendants,
    find_image,
    image_size,
    image_size_if_readable,
    parse_points,
    parse_xml,
)


def read_pagexml(xml_path: str | Path) -> Page:
    """Parse a PAGE XML file (2013 schema; 2010/2019 read the same way) into a :class:`Page`."""
    xml_path = Path(xml_path)
    root = parse_xml(xml_path, "PcGts", "a PAGE")
    page_el = next(iter(descendants(root, "Page")), None)
    if page_el is None:
        raise DataError(f"{xml_path}: PAGE file without a <Page> element")
    image_path = find_image(xml_path, page_el.get("imageFilename"))
    width, height = int(page_el.get("imageWidth", 0)), int(page_el.get("imageHeight", 0))
    sx = sy = 1.0
    if not (width and height):
        width, height = image_size(image_path)
    elif size := image_size_if_readable(image_path):  # XML made on a rescaled copy: map to the image at hand
        sx, sy, width, height = size[0] / width, size[1] / height, size[0], size[1]
    lines = []
    for region in descendants(page_el, "TextRegion"):
        region_type = _custom_type(region.get("custom"))
        lines += [_page_line(el, region_type, sx, sy) for el in children(region, "TextLine")]
    return Page(image_path, width, height, lines, xml_path, "page")


def _page_points(el: ET.Element | None) -> list[tuple[float, float]]:
    if el is None:
        return []
    if el.get("points") is not None:
        return parse_points(el.get("points"))
    return [(float(p.get("x")), float(p.get("y"))) for p in children(el, "Point")]  # PAGE 2010


def _custom_type(custom: str | None) -> str | None:
    m = re.search(r"structure\s*\{[^}]*?type\s*:\s*([^;}]+)", custom or "")
    return m.group(1).strip() if m else None


def _text_equiv(el: ET.Element) -> str | None:
    equivs = children(el, "TextEquiv")
    if not equivs:
        return None
    best = min(equivs, key=lambda e: int(e.get("index", 0) or 0))
    uni = child(best, "Unicode")
    return (uni.text or "") if uni is not None else ""


def _page_line(el: ET.Element, region_type: str | None, sx: float = 1.0, sy: float = 1.0) -> TextLine:
    polygon = [(x * sx, y * sy) for x, y in _page_points(child(el, "Coords"))]
    baseline = [(x * sx, y * sy) for x, y in _page_points(child(el, "Baseline"))] or None
    text = _text_equiv(el)
    if text is None:
        text = " ".join(t for t in (_text_equiv(w) for w in children(el, "Word")) if t)
    label = _custom_type(el.get("custom")) or region_type
    bbox = bbox_of(polygon) if polygon else (0.0, 0.0, 0.0, 0.0)
    return TextLine(id=el.get("id", ""), polygon=polygon or box_polygon(bbox), bbox=bbox, baseline=baseline,
                    text=text.strip(), line_type=label.rsplit(":", 1)[-1] if label else None, label=label)
