"""ALTO (v2-v4) files to a :class:`~.page.Page` in image pixels (see the package docstring for the rules)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from ...errors import DataError
from .page import (
    Page,
    TextLine,
    bbox_of,
    box_polygon,
    child,
    descendants,
    find_image,
    image_size,
    image_size_if_readable,
    local_name,
    parse_points,
    parse_xml,
)


def read_alto(xml_path: str | Path) -> Page:
    """Parse an ALTO file (v2-v4) into a :class:`Page` in pixel coordinates (see the module docstring)."""
    xml_path = Path(xml_path)
    root = parse_xml(xml_path, "alto", "an ALTO")
    desc = child(root, "Description")
    unit = (desc is not None and child(desc, "MeasurementUnit") is not None
            and (child(desc, "MeasurementUnit").text or "").strip()) or "pixel"
    file_name = next((e.text.strip() for e in descendants(root, "fileName") if e.text and e.text.strip()), None)
    image_path = find_image(xml_path, file_name)
    page_el = next(iter(descendants(root, "Page")), None)
    page_w = float(page_el.get("WIDTH", 0)) if page_el is not None else 0.0
    page_h = float(page_el.get("HEIGHT", 0)) if page_el is not None else 0.0
    sx, sy, width, height = _alto_scale(unit, page_w, page_h, image_path, xml_path)
    labels = {t.get("ID"): t.get("LABEL") for t in descendants(root, "Tags") for t in t if t.get("ID")}
    lines = [_alto_line(el, labels, sx, sy) for el in descendants(root, "TextLine")]
    return Page(image_path, width, height, lines, xml_path, "alto")


def _alto_scale(unit: str, page_w: float, page_h: float, image_path: Path, xml_path: Path):
    """(x scale, y scale, width px, height px) turning ALTO coordinates into image pixels."""
    if unit == "pixel":
        if not (page_w and page_h):
            w, h = image_size(image_path)
            return 1.0, 1.0, w, h
        if size := image_size_if_readable(image_path):  # XML made on a rescaled copy: map to the image at hand
            return size[0] / page_w, size[1] / page_h, size[0], size[1]
        return 1.0, 1.0, round(page_w), round(page_h)
    if unit not in ("mm10", "inch1200"):
        raise DataError(f"{xml_path}: ALTO MeasurementUnit {unit!r} is not supported (pixel, mm10, inch1200)")
    if not (page_w and page_h):
        raise DataError(f"{xml_path}: MeasurementUnit {unit} needs Page WIDTH and HEIGHT to convert to pixels")
    w, h = image_size(image_path)  # the image's own pixel grid defines the scale
    return w / page_w, h / page_h, w, h


def _alto_line(el: ET.Element, labels: Mapping[str, str], sx: float, sy: float) -> TextLine:
    scale = lambda pts: [(x * sx, y * sy) for x, y in pts]  # noqa: E731
    polygon_el = next(iter(descendants(el, "Polygon")), None)
    polygon = scale(parse_points(polygon_el.get("POINTS"))) if polygon_el is not None else []
    if el.get("HPOS") is not None and el.get("WIDTH") is not None:
        x, y = float(el.get("HPOS")) * sx, float(el.get("VPOS", 0)) * sy
        bbox = (x, y, x + float(el.get("WIDTH")) * sx, y + float(el.get("HEIGHT", 0)) * sy)
    elif polygon:
        bbox = bbox_of(polygon)
    else:
        bbox = (0.0, 0.0, 0.0, 0.0)
    label = next((labels[r] for r in (el.get("TAGREFS") or "").split() if labels.get(r)), None)
    return TextLine(
        id=el.get("ID", ""), polygon=polygon or box_polygon(bbox), bbox=bbox,
        baseline=_alto_baseline(el.get("BASELINE"), bbox, sx, sy), text=_alto_text(el),
        line_type=label.rsplit(":", 1)[-1] if label else None, label=label,
    )


def _alto_baseline(value: str | None, bbox, sx: float, sy: float) -> list[tuple[float, float]] | None:
    if not value or not value.strip():
        return None
    pts = parse_points(value) if len(re.split(r"[\s,]+", value.strip())) > 1 else []
    if pts:
        return [(x * sx, y * sy) for x, y in pts]
    y = float(value) * sy  # ALTO < 4.2: BASELINE is the baseline's vertical position
    return [(bbox[0], y), (bbox[2], y)]


def _alto_text(line: ET.Element) -> str:
    parts: list[str] = []
    has_sp = any(local_name(c.tag) == "SP" for c in line)
    for c in line:
        tag = local_name(c.tag)
        if tag == "String":
            if parts and not has_sp and not parts[-1].endswith(" "):
                parts.append(" ")
            parts.append(c.get("CONTENT", ""))
        elif tag == "SP":
            parts.append(" ")
        elif tag == "HYP":
            parts.append(c.get("CONTENT", "-"))
    return "".join(parts).strip()
