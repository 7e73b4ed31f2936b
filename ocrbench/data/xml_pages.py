"""ALTO v4 and PAGE 2013 page XML: parsing, and the ``alto:PATH`` / ``pagexml:PATH`` line-crop datasets.

Parsing (used by the line datasets here and by page detectors) turns one XML file into a :class:`Page` of
:class:`TextLine` objects, every coordinate in **page pixels** of the scanned image:

* ALTO (v2-v4, namespace-agnostic): ``TextLine`` elements with ``HPOS/VPOS/WIDTH/HEIGHT``, an optional
  ``Shape/Polygon`` and ``BASELINE`` (a point list in ALTO 4.2, a single y in older files), text from the
  ``String CONTENT`` / ``SP`` / ``HYP`` children, and the line type from ``TAGREFS`` resolved against the
  ``Tags`` section (``OtherTag LABEL="DefaultLine:Handwritten"`` gives ``line_type="Handwritten"``).
  ``MeasurementUnit`` ``pixel`` is used as is; ``mm10`` and ``inch1200`` are scaled to pixels by the ratio of
  the image's pixel size to the ``Page WIDTH/HEIGHT`` (so the image must exist); other units are an error.
  When the image at hand is not the size the XML declares (``Page WIDTH/HEIGHT`` in pixels, PAGE's
  ``imageWidth/imageHeight``: the XML was made on a rescaled copy), coordinates are scaled to the image.
* PAGE (2010-2019 schemas, namespace-agnostic): ``TextLine`` with ``Coords points="x,y x,y ..."`` (or
  ``Point`` children), ``Baseline``, ``TextEquiv/Unicode`` (the lowest ``index``; else the words' texts),
  and the line type from ``custom="structure {type:Handwritten;}"`` on the line or, failing that, its region.

Line datasets (``alto:PATH``, ``pagexml:PATH``; ``PATH`` is any folder of images + XML, searched
recursively, images paired with XML by file stem):

* a line is cropped from its bounding box (optionally masked to its polygon), converted to the ocrbench image
  convention (ink bright on dark: scans are inverted and their paper level subtracted, see
  :func:`scan_to_ink`), resized to ``cfg.height`` and cached on disk (``<cache>/xml-lines/``);
* **splits**: a folder with ``train.txt``/``val.txt``/``test.txt`` (page file stems, one per line) has those
  splits; a folder without them serves **only** ``test`` (every selected line), so a folder of pages is an
  evaluation set by default and can never leak into training by accident;
* every line that is left out is counted in ``dataset.stats`` (by type filter, empty transcription,
  unreadable image with ``data.skip_bad``).

Options (``DataConfig.options``):
    line_types (["Handwritten"]): keep lines whose type (``Handwritten``) or full label
        (``DefaultLine:Handwritten``) is listed, case-insensitive; ``all`` keeps every line. Pages that tag no
        line types at all keep every line.
    polygon_mask (false): blank out everything outside the line polygon (neighbouring lines' ascenders).
    padding (0): extra pixels of context around the bounding box.
    superscript ("strip"), strikethrough ("drop"): transcription conventions, see :func:`apply_conventions`.
    convention_token ("#"): what ``map`` replaces a marked span with.
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..errors import DataError, UserError
from . import integrity
from .base import LineSample
from .charset import Charset, CharsetError
from .registry import DataConfig, register_dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".jp2")
XML_LINES_VERSION = 1  # bump when a change alters any cached crop
DEFAULT_OPTIONS = {"line_types": ["Handwritten"], "polygon_mask": False, "padding": 0,
                   "superscript": "strip", "strikethrough": "drop", "convention_token": "#"}
CONVENTION_MODES = ("keep", "strip", "drop", "map")
SPLIT_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}


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
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if _local(c.tag) == name]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in elem if _local(c.tag) == name), None)


def _iter(elem: ET.Element, name: str) -> Iterable[ET.Element]:
    return (e for e in elem.iter() if _local(e.tag) == name)


def parse_points(text: str | None) -> list[tuple[float, float]]:
    """``"x1,y1 x2,y2"`` or ``"x1 y1 x2 y2"`` → [(x1, y1), (x2, y2)]."""
    nums = [float(v) for v in re.split(r"[\s,]+", (text or "").strip()) if v]
    if len(nums) % 2:
        raise ValueError(f"odd number of coordinates in {text[:60]!r}")
    return list(zip(nums[0::2], nums[1::2]))


def _bbox_of(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def _box_polygon(b: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    return [(b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3])]


def _parse_xml(xml_path: Path) -> ET.Element:
    try:
        return ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise DataError(f"cannot parse {xml_path}: {e}") from None


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


def _image_size_if_readable(path: Path) -> tuple[int, int] | None:
    """The image's size, or None when it is missing or unreadable (reported when its pixels are needed)."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        return None


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read page image {path}: {e}") from None


# ---- ALTO -------------------------------------------------------------------------------------------------
def read_alto(xml_path: str | Path) -> Page:
    """Parse an ALTO file (v2-v4) into a :class:`Page` in pixel coordinates (see the module docstring)."""
    xml_path = Path(xml_path)
    root = _parse_xml(xml_path)
    if _local(root.tag) != "alto":
        raise DataError(f"{xml_path} is not an ALTO file (root element <{_local(root.tag)}>)")
    desc = _child(root, "Description")
    unit = (desc is not None and _child(desc, "MeasurementUnit") is not None
            and (_child(desc, "MeasurementUnit").text or "").strip()) or "pixel"
    file_name = next((e.text.strip() for e in _iter(root, "fileName") if e.text and e.text.strip()), None)
    image_path = find_image(xml_path, file_name)
    page_el = next(iter(_iter(root, "Page")), None)
    page_w = float(page_el.get("WIDTH", 0)) if page_el is not None else 0.0
    page_h = float(page_el.get("HEIGHT", 0)) if page_el is not None else 0.0
    sx, sy, width, height = _alto_scale(unit, page_w, page_h, image_path, xml_path)
    labels = {t.get("ID"): t.get("LABEL") for t in _iter(root, "Tags") for t in t if t.get("ID")}
    lines = [_alto_line(el, labels, sx, sy) for el in _iter(root, "TextLine")]
    return Page(image_path, width, height, lines, xml_path, "alto")


def _alto_scale(unit: str, page_w: float, page_h: float, image_path: Path, xml_path: Path):
    """(x scale, y scale, width px, height px) turning ALTO coordinates into image pixels."""
    if unit == "pixel":
        if not (page_w and page_h):
            w, h = _image_size(image_path)
            return 1.0, 1.0, w, h
        if size := _image_size_if_readable(image_path):  # XML made on a rescaled copy: map to the image at hand
            return size[0] / page_w, size[1] / page_h, size[0], size[1]
        return 1.0, 1.0, round(page_w), round(page_h)
    if unit not in ("mm10", "inch1200"):
        raise DataError(f"{xml_path}: ALTO MeasurementUnit {unit!r} is not supported (pixel, mm10, inch1200)")
    if not (page_w and page_h):
        raise DataError(f"{xml_path}: MeasurementUnit {unit} needs Page WIDTH and HEIGHT to convert to pixels")
    w, h = _image_size(image_path)  # the image's own pixel grid defines the scale
    return w / page_w, h / page_h, w, h


def _alto_line(el: ET.Element, labels: Mapping[str, str], sx: float, sy: float) -> TextLine:
    scale = lambda pts: [(x * sx, y * sy) for x, y in pts]  # noqa: E731
    polygon_el = next(iter(_iter(el, "Polygon")), None)
    polygon = scale(parse_points(polygon_el.get("POINTS"))) if polygon_el is not None else []
    if el.get("HPOS") is not None and el.get("WIDTH") is not None:
        x, y = float(el.get("HPOS")) * sx, float(el.get("VPOS", 0)) * sy
        bbox = (x, y, x + float(el.get("WIDTH")) * sx, y + float(el.get("HEIGHT", 0)) * sy)
    elif polygon:
        bbox = _bbox_of(polygon)
    else:
        bbox = (0.0, 0.0, 0.0, 0.0)
    label = next((labels[r] for r in (el.get("TAGREFS") or "").split() if labels.get(r)), None)
    return TextLine(
        id=el.get("ID", ""), polygon=polygon or _box_polygon(bbox), bbox=bbox,
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
    has_sp = any(_local(c.tag) == "SP" for c in line)
    for c in line:
        tag = _local(c.tag)
        if tag == "String":
            if parts and not has_sp and not parts[-1].endswith(" "):
                parts.append(" ")
            parts.append(c.get("CONTENT", ""))
        elif tag == "SP":
            parts.append(" ")
        elif tag == "HYP":
            parts.append(c.get("CONTENT", "-"))
    return "".join(parts).strip()


# ---- PAGE -------------------------------------------------------------------------------------------------
def read_pagexml(xml_path: str | Path) -> Page:
    """Parse a PAGE XML file (2013 schema; 2010/2019 read the same way) into a :class:`Page`."""
    xml_path = Path(xml_path)
    root = _parse_xml(xml_path)
    if _local(root.tag) != "PcGts":
        raise DataError(f"{xml_path} is not a PAGE file (root element <{_local(root.tag)}>)")
    page_el = next(iter(_iter(root, "Page")), None)
    if page_el is None:
        raise DataError(f"{xml_path}: PAGE file without a <Page> element")
    image_path = find_image(xml_path, page_el.get("imageFilename"))
    width, height = int(page_el.get("imageWidth", 0)), int(page_el.get("imageHeight", 0))
    sx = sy = 1.0
    if not (width and height):
        width, height = _image_size(image_path)
    elif size := _image_size_if_readable(image_path):  # XML made on a rescaled copy: map to the image at hand
        sx, sy, width, height = size[0] / width, size[1] / height, size[0], size[1]
    lines = []
    for region in _iter(page_el, "TextRegion"):
        region_type = _custom_type(region.get("custom"))
        lines += [_page_line(el, region_type, sx, sy) for el in _children(region, "TextLine")]
    return Page(image_path, width, height, lines, xml_path, "page")


def _page_points(el: ET.Element | None) -> list[tuple[float, float]]:
    if el is None:
        return []
    if el.get("points") is not None:
        return parse_points(el.get("points"))
    return [(float(p.get("x")), float(p.get("y"))) for p in _children(el, "Point")]  # PAGE 2010


def _custom_type(custom: str | None) -> str | None:
    m = re.search(r"structure\s*\{[^}]*?type\s*:\s*([^;}]+)", custom or "")
    return m.group(1).strip() if m else None


def _text_equiv(el: ET.Element) -> str | None:
    equivs = _children(el, "TextEquiv")
    if not equivs:
        return None
    best = min(equivs, key=lambda e: int(e.get("index", 0) or 0))
    uni = _child(best, "Unicode")
    return (uni.text or "") if uni is not None else ""


def _page_line(el: ET.Element, region_type: str | None, sx: float = 1.0, sy: float = 1.0) -> TextLine:
    polygon = [(x * sx, y * sy) for x, y in _page_points(_child(el, "Coords"))]
    baseline = [(x * sx, y * sy) for x, y in _page_points(_child(el, "Baseline"))] or None
    text = _text_equiv(el)
    if text is None:
        text = " ".join(t for t in (_text_equiv(w) for w in _children(el, "Word")) if t)
    label = _custom_type(el.get("custom")) or region_type
    bbox = _bbox_of(polygon) if polygon else (0.0, 0.0, 0.0, 0.0)
    return TextLine(id=el.get("id", ""), polygon=polygon or _box_polygon(bbox), bbox=bbox, baseline=baseline,
                    text=text.strip(), line_type=label.rsplit(":", 1)[-1] if label else None, label=label)


# ---- folders and images -----------------------------------------------------------------------------------
def xml_format(xml_path: Path) -> str | None:
    """``"alto"``, ``"page"`` or None, from the root element (read incrementally: cheap on big files)."""
    try:
        for _, elem in ET.iterparse(xml_path, events=("start",)):
            return {"alto": "alto", "PcGts": "page"}.get(_local(elem.tag))
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
    return integrity.read_gray(page.image_path)


def scan_to_ink(gray: np.ndarray) -> np.ndarray:
    """A scanned crop (dark ink on light paper) in ocrbench's convention: inverted, the paper level (the
    median, since most of a line crop is paper) moved to 0 and the strongest ink (99.5th percentile)
    stretched to 255, so scans of any exposure look like the training lines."""
    inv = 255.0 - gray.astype(np.float32)
    paper = float(np.median(inv))
    peak = float(np.percentile(inv, 99.5))
    scale = 255.0 / max(peak - paper, 32.0)  # a near-empty crop is not blown up into noise
    return np.clip((inv - paper) * scale + 0.5, 0, 255).astype(np.uint8)


def crop_line(gray: np.ndarray, line: TextLine, polygon_mask: bool = False, padding: float = 0) -> np.ndarray:
    """The line's bounding box (plus ``padding`` pixels) from a page scan (ink dark), ink-bright on dark.

    With ``polygon_mask``, pixels outside the line polygon become paper.
    """
    h, w = gray.shape
    x0, y0, x1, y1 = line.bbox
    x0, y0 = max(0, int(np.floor(x0 - padding))), max(0, int(np.floor(y0 - padding)))
    x1, y1 = min(w, int(np.ceil(x1 + padding))), min(h, int(np.ceil(y1 + padding)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"line {line.id} has an empty box {line.bbox} on a {w}x{h} page")
    ink = scan_to_ink(gray[y0:y1, x0:x1])
    if polygon_mask and len(line.polygon) >= 3:
        mask = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in line.polygon], fill=255)
        ink = np.where(np.asarray(mask) > 0, ink, 0).astype(np.uint8)
    return ink


# ---- transcription conventions ----------------------------------------------------------------------------
_STRIKE = re.compile(r"⟦(.*?)⟧", re.S)
_SUPER = re.compile(r"\^(\S*)")


def apply_conventions(text: str, superscript: str = "strip", strikethrough: str = "drop", token: str = "#") -> str:
    """Apply the transcription conventions of eScriptorium-style transcriptions (e.g. the Stanford memorials pages).

    ``^`` marks the following run of non-space characters as superscript (``M^r``); ``⟦ ⟧`` wrap struck-out
    or illegible text. Each convention is one of:

    * ``keep``: leave the markup in the text (the charset must then hold ``^``/``⟦``/``⟧``, or the OOV
      policy applies);
    * ``strip``: remove the markers, keep the text they mark (``M^r`` → ``Mr``, ``⟦the⟧`` → ``the``);
    * ``drop``: remove the markers and the marked text (``M^r`` → ``M``, ``a ⟦the⟧ b`` → ``a b``);
    * ``map``: replace the marked span with ``token`` (``⟦the⟧`` → ``#``).

    Defaults: superscripts stripped (a reader types ``Mr``), struck-out text dropped (it is not part of the
    text the writer meant). Whitespace is collapsed afterwards by the charset's NFC step.
    """
    for mode in (superscript, strikethrough):
        if mode not in CONVENTION_MODES:
            raise UserError(f"transcription convention mode must be one of {CONVENTION_MODES}, got {mode!r}")
    text = _convert(text, _STRIKE, strikethrough, token)
    return _convert(text, _SUPER, superscript, token)


def _convert(text: str, pattern: re.Pattern, mode: str, token: str) -> str:
    if mode == "keep":
        return text
    repl = {"strip": lambda m: m.group(1), "drop": lambda m: "", "map": lambda m: token}[mode]
    return pattern.sub(repl, text)


# ---- the line datasets ------------------------------------------------------------------------------------
def resolve_options(options: Mapping[str, Any], kind: str) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise UserError(f"unknown {kind} option(s) {unknown}; valid: {sorted(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    types = opts["line_types"]
    if isinstance(types, str):
        types = None if types.lower() == "all" else [t.strip() for t in types.split(",") if t.strip()]
    opts["line_types"] = sorted(t.lower() for t in types) if types else None
    apply_conventions("", opts["superscript"], opts["strikethrough"], opts["convention_token"])  # validates
    return opts


def keep_line(line: TextLine, types: list[str] | None, page_has_types: bool) -> bool:
    if types is None or not page_has_types:
        return True
    return any(t is not None and t.lower() in types for t in (line.line_type, line.label))


def split_stems(root: Path, split: str) -> set[str] | None:
    """Page stems of ``split`` from the folder's split files, or None when the folder has none."""
    files = {s: root / name for s, name in SPLIT_FILES.items()}
    if not any(p.is_file() for p in files.values()):
        if split != "test":
            raise DataError(
                f"{root} has no split files, so it serves only split 'test' (every line). To train on it, add "
                f"{', '.join(SPLIT_FILES.values())} listing page file stems, one per line.")
        return None
    if not files[split].is_file():
        raise DataError(f"{root} has split files but no {files[split].name} for split {split!r}")
    return {s.strip() for s in files[split].read_text().splitlines() if s.strip() and not s.startswith("#")}


class XmlLines(integrity.CachedLines):
    """Line crops and transcriptions of a folder of page images + ALTO or PAGE XML (see the module doc)."""

    def __init__(self, split: str, cfg: DataConfig, fmt: str):
        kind = {"alto": "alto", "page": "pagexml"}[fmt]
        if not cfg.root:
            raise DataError(f"{kind} needs a folder of page images and XML files: use --dataset {kind}:PATH "
                            f"or data.root=PATH")
        self.root, self.fmt = Path(cfg.root).expanduser(), fmt
        self.options = resolve_options(cfg.options, kind)
        self.charset = Charset(oov=cfg.oov)
        pages = read_page_folder(self.root, (fmt,))
        if not pages:
            raise DataError(f"no {fmt.upper()} XML files found under {self.root}")
        stems = split_stems(self.root, split)
        self.pages = [p for p in pages if stems is None or p.xml_path.stem in stems]
        self.stats: Counter = Counter()
        self.records = self._select_lines()
        key = {"version": XML_LINES_VERSION, "kind": kind, "root": str(self.root.resolve()), "split": split,
               "height": cfg.height, "options": self.options, "files": integrity.files_digest(
                   [p.xml_path for p in self.pages] + [p.image_path for p in self.pages])}
        super().__init__(f"{kind}-{split}", cfg, key, [r["id"] for r in self.records])

    def _select_lines(self) -> list[dict]:
        records = []
        for page_index, page in enumerate(self.pages):
            has_types = any(line.label or line.line_type for line in page.lines)
            for line in page.lines:
                if not keep_line(line, self.options["line_types"], has_types):
                    self.stats[f"filtered_type_{line.line_type}"] += 1
                    continue
                text = apply_conventions(line.text, self.options["superscript"], self.options["strikethrough"],
                                         self.options["convention_token"])
                try:
                    text = self.charset.prepare(text)
                except CharsetError as e:
                    raise DataError(f"{page.xml_path}: line {line.id}: {e}. Set data.oov=replace to map such "
                                    f"characters (counted), or pick a charset that holds them.") from None
                if not text:
                    self.stats["empty_text"] += 1
                    continue
                records.append({"id": f"{page.xml_path.stem}/{line.id}", "page": page_index, "line": line,
                                "text": text, "type": line.line_type})
        return records

    def render_all(self):
        """Yield ``(id, image or None, text, source, error)`` for every selected line, page by page."""
        by_page: dict[int, list[dict]] = {}
        for r in self.records:
            by_page.setdefault(r["page"], []).append(r)
        for page_index, recs in by_page.items():
            page = self.pages[page_index]
            try:
                gray = load_page_image(page)
            except DataError as e:
                for r in recs:
                    yield r["id"], None, r["text"], page.image_path, str(e)
                continue
            for r in recs:
                try:
                    crop = crop_line(gray, r["line"], self.options["polygon_mask"], self.options["padding"])
                except ValueError as e:
                    yield r["id"], None, r["text"], page.xml_path, str(e)
                    continue
                yield r["id"], crop, r["text"], page.image_path, None

    def sample_meta(self, index: int) -> dict:
        r = self.records[self._record_index(index)]
        return {"id": r["id"], "line_type": r["type"], "page": str(self.pages[r["page"]].image_path.name)}


_XML_LICENSE = "the folder's own license (the Stanford memorials test pages: CC-BY 4.0)"
_SIZES = ("the folder's lines; without train.txt/val.txt/test.txt only split test (every selected line). "
          "Stanford memorials test pages: 2 pages, 26 handwritten + 2 printed lines")
_CITE = "ALTO: Library of Congress, ALTO v4 schema; PAGE: Pletschacher & Antonacopoulos, ICPR 2010"


@register_dataset("alto", description="Line crops + transcriptions from a folder of page images with ALTO XML "
                  "(alto:PATH)", license=_XML_LICENSE, citation=_CITE, needs_root=True, sizes=_SIZES,
                  charset="IAM (79 symbols), OOV per data.oov")
def alto_lines(split: str, cfg: DataConfig) -> XmlLines:
    return XmlLines(split, cfg, "alto")


@register_dataset("pagexml", description="Line crops + transcriptions from a folder of page images with PAGE "
                  "XML (pagexml:PATH)", license=_XML_LICENSE, citation=_CITE, needs_root=True, sizes=_SIZES,
                  charset="IAM (79 symbols), OOV per data.oov")
def pagexml_lines(split: str, cfg: DataConfig) -> XmlLines:
    return XmlLines(split, cfg, "page")


@integrity.register_check("alto")
def check_alto(root: str | Path, **_) -> integrity.CheckReport:
    return _check_folder(Path(root), "alto")


@integrity.register_check("pagexml")
def check_pagexml(root: str | Path, **_) -> integrity.CheckReport:
    return _check_folder(Path(root), "page")


def _check_folder(root: Path, fmt: str) -> integrity.CheckReport:
    kind = {"alto": "alto", "page": "pagexml"}[fmt]
    report = integrity.CheckReport(kind, root)
    if not root.is_dir():
        report.fail(f"{root} does not exist or is not a folder",
                    f"point {kind}:PATH at a folder of page images with their {fmt.upper()} XML files")
        return report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pages = read_page_folder(root, (fmt,))
    if not pages:
        report.fail(f"no {fmt.upper()} XML files under {root}",
                    f"{kind}:PATH needs page images plus {fmt.upper()} XML files with the same file stem")
        return report
    types: Counter = Counter()
    for page in pages:
        problem = integrity.check_image(page.image_path)
        if problem:
            report.bad(page.image_path, problem)
        types.update(line.line_type or "untyped" for line in page.lines)
    report.counts = {"pages": len(pages), "lines": sum(types.values()), **{f"type {k}": v for k, v in types.items()}}
    has_split_files = any((root / name).is_file() for name in SPLIT_FILES.values())
    report.notes.append("split files found: train/val/test as listed" if has_split_files else
                        "no split files: the folder serves split 'test' (every selected line)")
    for split in (SPLIT_FILES if has_split_files else ("test",)):
        _check_split_lines(root, fmt, split, report)
    return report


def _check_split_lines(root: Path, fmt: str, split: str, report: integrity.CheckReport) -> None:
    """Select and crop every line of ``split`` as loading would, so that the check fails where eval and
    training would: a line box too small to crop is a bad file; characters outside the charset are a note
    (eval maps them under ``oov: replace`` and counts them; training with the default ``oov: error`` refuses
    them, and the note says so)."""
    kind = report.dataset
    cfg = DataConfig(name=kind, root=str(root), oov="replace")
    try:
        lines = XmlLines(split, cfg, fmt)
    except DataError as e:
        report.fail(str(e))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item, _, _, source, error in lines.render_all():
            if error is not None:
                report.bad(source, error, item)
    replaced = lines.charset.stats.replaced
    if replaced:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X}) x{n}" for c, n in replaced.most_common(10))
        report.notes.append(f"split {split}: {replaced.total()} characters outside the charset: {shown}; "
                            "eval replaces and counts them, training needs data.oov=replace")


def page_line_samples(page: Page, height: int | None = None) -> list[LineSample]:
    """All lines of one page as line samples (ink bright), for quick looks and page-level tools."""
    from .base import resize_to_height

    gray = load_page_image(page)
    out = []
    for line in page.lines:
        crop = crop_line(gray, line)
        out.append(LineSample(resize_to_height(crop, height) if height else crop, line.text, {"id": line.id}))
    return out


__all__ = ["Page", "TextLine", "apply_conventions", "crop_line", "load_page_image", "read_alto",
           "read_page", "read_page_folder", "read_pagexml", "scan_to_ink"]
