"""Reading page XML whatever its format: one file, a folder of them, and a page's scan."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ...data.images import read_gray
from ...errors import DataError
from .alto import read_alto
from .page import Page, local_name
from .pagexml import read_pagexml


def xml_format(xml_path: Path) -> str | None:
    """``"alto"``, ``"page"`` or None, from the root element (read incrementally: cheap on big files)."""
    try:
        for _, elem in ET.iterparse(xml_path, events=("start",)):
            return {"alto": "alto", "PcGts": "page"}.get(local_name(elem.tag))
    except (ET.ParseError, OSError):
        return None
    return None


def read_page(xml_path: str | Path) -> Page:
    """Read an ALTO or PAGE file, whichever it is."""
    fmt = xml_format(Path(xml_path))
    if fmt is None:
        raise DataError(f"{xml_path} is neither an ALTO nor a PAGE XML file (or cannot be parsed)")
    return read_alto(xml_path) if fmt == "alto" else read_pagexml(xml_path)


def read_page_folder(root: str | Path, formats: tuple[str, ...] = ("alto", "page")) -> list[Page]:
    """Every ALTO/PAGE file under ``root`` (recursive, sorted by path), paired with its image by file stem.

    XML files of another kind (METS, ...) are passed over with a warning naming them.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"page folder {root} does not exist or is not a folder")
    pages, other = [], []
    for xml_path in sorted(root.rglob("*.xml")):
        fmt = xml_format(xml_path)
        if fmt in formats:
            pages.append(read_alto(xml_path) if fmt == "alto" else read_pagexml(xml_path))
        else:
            other.append(xml_path.name)
    if other:
        warnings.warn(f"{root}: ignored {len(other)} XML file(s) that are not {'/'.join(formats)}: "
                      f"{', '.join(other[:5])}{' ...' if len(other) > 5 else ''}", stacklevel=2)
    return pages


def load_page_image(page: Page) -> np.ndarray:
    """The page scan as uint8 grayscale, as scanned (ink dark); a :class:`DataError` names an unreadable file."""
    return read_gray(page.image_path)
