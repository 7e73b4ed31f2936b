"""The ``alto:PATH`` / ``pagexml:PATH`` line datasets: line crops + transcriptions of a folder of page scans."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ...config import DataConfig
from ...data import integrity
from ...data.cache import CachedLines
from ...data.charset import Charset, CharsetError, charset_from_texts
from ...data.images import scan_to_ink
from ...data.registry import register_dataset, resolve_options
from ...errors import DataError
from .conventions import STRIKETHROUGH, SUPERSCRIPT, TOKEN, apply_conventions
from .folder import load_page_image, read_page_folder
from .page import TextLine

XML_LINES_VERSION = 1  # bump when a change alters any cached crop
DEFAULT_OPTIONS = {"line_types": ["Handwritten"], "polygon_mask": False, "padding": 0,
                   "superscript": SUPERSCRIPT, "strikethrough": STRIKETHROUGH, "convention_token": TOKEN,
                   "charset": "iam", "charset_min_count": 5}
# IAM's 79 symbols; the characters of the folder's training split; or "all": every character as written (an
# evaluation set read by a model trained elsewhere: nothing is mapped, and the characters the model cannot write
# are counted when it is evaluated)
CHARSETS = ("iam", "train", "all")
SPLIT_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}


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


def parse_options(options: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """``DataConfig.options`` of an ``alto``/``pagexml`` dataset over :data:`DEFAULT_OPTIONS`, checked and
    normalised (``line_types`` lower-cased and sorted, None for every type)."""
    opts = resolve_options(kind, options, DEFAULT_OPTIONS)
    types = opts["line_types"]
    if isinstance(types, str):
        types = None if types.lower() == "all" else [t.strip() for t in types.split(",") if t.strip()]
    opts["line_types"] = sorted(t.lower() for t in types) if types else None
    apply_conventions("", opts["superscript"], opts["strikethrough"], opts["convention_token"])  # validates
    if opts["charset"] not in CHARSETS:
        raise DataError(f"{kind} option charset must be one of {', '.join(CHARSETS)}, got {opts['charset']!r}")
    if not isinstance(opts["charset_min_count"], int) or opts["charset_min_count"] < 1:
        raise DataError(f"{kind} option charset_min_count must be an integer >= 1, got {opts['charset_min_count']!r}")
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


def _has_types(page) -> bool:
    """Whether a page tags its lines with types at all (pages that tag none keep every line)."""
    return any(line.label or line.line_type for line in page.lines)


class XmlLines(CachedLines):
    """Line crops and transcriptions of a folder of page images + ALTO or PAGE XML (see the module doc)."""

    def __init__(self, split: str, cfg: DataConfig, fmt: str, document_of=None):
        kind = {"alto": "alto", "page": "pagexml"}[fmt]
        if not cfg.root:
            raise DataError(f"{kind} needs a folder of page images and XML files: use --dataset {kind}:PATH "
                            f"or data.root=PATH")
        self.root, self.fmt = Path(cfg.root).expanduser(), fmt
        self.options = parse_options(cfg.options, kind)
        # a page's document (resampled whole by the leaderboard's bootstrap); default: each page its own
        self.document_of = document_of or (lambda stem: stem)
        pages = read_page_folder(self.root, (fmt,))
        if not pages:
            raise DataError(f"no {fmt.upper()} XML files found under {self.root}")
        self.charset, self.charset_rule = self._make_charset(cfg, pages)
        stems = split_stems(self.root, split)
        self.pages = [p for p in pages if stems is None or p.xml_path.stem in stems]
        self.stats: Counter = Counter()
        self.records = self._select_lines()
        key = {"version": XML_LINES_VERSION, "kind": kind, "root": str(self.root.resolve()), "split": split,
               "height": cfg.height, "options": self.options, "charset": self.charset.chars, "files": integrity.files_digest(
                   [p.xml_path for p in self.pages] + [p.image_path for p in self.pages])}
        super().__init__(f"{kind}-{split}", cfg, key, [r["id"] for r in self.records])

    def _make_charset(self, cfg: DataConfig, pages: list) -> tuple[Charset, str]:
        """IAM's charset (``data.oov`` applies), or with option ``charset: train`` the characters of the
        training split's transcriptions (the same for every split, so a model reads each split with the
        charset it was built with; see :func:`~ocrbench.data.charset.charset_from_texts`)."""
        if self.options["charset"] == "iam":
            return Charset(oov=cfg.oov), f"IAM ({len(Charset())} symbols), data.oov={cfg.oov}"
        if self.options["charset"] == "all":
            texts = [self._transcription(line) for page in pages for line in page.lines]
            return charset_from_texts(texts, 1), "every character as written (nothing mapped)"
        train = split_stems(self.root, "train")  # a folder without split files: one line naming them
        texts = [self._transcription(line) for page in pages if page.xml_path.stem in train for line in page.lines
                 if keep_line(line, self.options["line_types"], _has_types(page))]
        minimum = self.options["charset_min_count"]
        charset = charset_from_texts(texts, minimum)
        return charset, (f"the train split's characters seen at least {minimum} times ({len(charset) - 1}, plus "
                         "U+FFFD); rarer ones become their base letter when it is kept, else U+FFFD (counted)")

    def _transcription(self, line: TextLine) -> str:
        return apply_conventions(line.text, self.options["superscript"], self.options["strikethrough"],
                                 self.options["convention_token"])

    def _select_lines(self) -> list[dict]:
        records = []
        for page_index, page in enumerate(self.pages):
            has_types = _has_types(page)
            for line in page.lines:
                if not keep_line(line, self.options["line_types"], has_types):
                    self.stats[f"filtered_type_{line.line_type}"] += 1
                    continue
                text = self._transcription(line)
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
        page = self.pages[r["page"]]
        return {"id": r["id"], "line_type": r["type"], "page": str(page.image_path.name),
                "document": self.document_of(page.xml_path.stem)}


_XML_LICENSE = "the folder's own license (e.g. stanford-memorials, copiste-dun-jour: CC-BY 4.0)"
_SIZES = ("the folder's lines; without train.txt/val.txt/test.txt only split test (every selected line)")
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
