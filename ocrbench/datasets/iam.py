"""``iam``: the IAM Handwriting Database (user-supplied; its license forbids redistribution).

The folder given as ``data.root`` (or ``$OCRBENCH_IAM``) holds IAM's standard layout, as extracted from the
FKI downloads::

    ROOT/lines/a01/a01-000u/a01-000u-00.png     lines.tgz   (line images; any nesting under lines/ works)
    ROOT/xml/a01-000u.xml                       xml.tgz     (per-form metadata: texts, writer, boxes)
    ROOT/ascii/lines.txt                        ascii.tgz   (alternative metadata: one line per text line)
    ROOT/formsA-D/a01-000u.png ...              formsA-D.tgz, formsE-H.tgz, formsI-Z.tgz (or ROOT/forms/)

Metadata comes from ``xml/`` when present (line texts with their real spacing: ``tomorrow. Mr.``), else from
``ascii/lines.txt``, whose transcriptions are word tokens joined by ``|``; they are joined with single spaces
(``tomorrow . Mr.``), which differs from the XML texts around punctuation: pick one source per experiment
(option ``text_source``) and report it.

Options (``DataConfig.options``):
    splits ("aachen"): ``aachen`` (6,482 / 976 / 2,915 lines), ``large`` (the original writer-independent
        task: 6,161 train, val = validation sets 1 + 2 = 1,840, test 1,861), or a folder with
        ``train.txt``/``val.txt``/``test.txt`` of line IDs. ``aachen`` reads IAM-B of the downloaded
        ``iam-splits`` (``ocrbench data download iam-splits``: the lists of shonenkov/IAM-Splitting at a pinned
        commit, checksums verified). ``large`` reads IAM's own task files (``trainset.txt``,
        ``validationset1.txt``, ``validationset2.txt``, ``testset.txt``) when the IAM folder holds them (in
        ``ROOT/``, ``ROOT/largeWriterIndependentTextLineRecognitionTask/`` or ``ROOT/task/``), else the
        downloaded IAM-C: train and test as they are, val = validation set 1 (the lines of IAM-D's validation
        list that are not in IAM-C's, 900 lines / 105 forms) then validation set 2 (IAM-C's, 940 / 115).
    level ("lines"): ``lines`` (IAM's line images) or ``paragraphs`` (the handwritten part of each form,
        cropped from the form scan around its lines; text = the form's lines joined by spaces; a form belongs
        to a split when its lines do).
    err_lines ("keep"): lines whose word segmentation IAM marks ``err`` (``segmentation="err"`` in the XML,
        ``err`` in lines.txt) are normal line images with a correct transcription; the status only concerns
        IAM's *word* boxes, so they are kept by default (the published split sizes include them). ``drop``
        leaves them out; the number left out is in ``dataset.stats``.
    text_source ("auto"): ``xml``, ``ascii`` or ``auto`` (xml when ``ROOT/xml`` exists).

Line images are inverted to ink-bright, paper level subtracted (:func:`~ocrbench.data.images.scan_to_ink`), resized to
``cfg.height`` and cached (``<cache>/lines/iam-*.npz``) on first use, so later epochs read one file.
"""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..data import integrity
from ..data.cache import CachedLines
from ..data.charset import Charset, CharsetError
from ..data.download import require_dataset
from ..data.images import read_gray, scan_to_ink
from ..data.registry import register_check, register_dataset, resolve_options
from ..data.sources import IAM_SPLITS
from ..errors import DataError, UserError
from .xml_pages.page import Page, TextLine

SPLITS_DATASET = IAM_SPLITS.name  # the downloadable lists (pinned in ocrbench.data.sources)
VAL1 = "validation set 1"  # derived: IAM-D/valid.txt minus IAM-C/valid.txt (see split_file_ids)
SPLIT_FILES = {
    "aachen": {"train": ["IAM-B/train.txt"], "val": ["IAM-B/valid.txt"], "test": ["IAM-B/test.txt"]},
    "large": {"train": ["IAM-C/train.txt"], "val": [VAL1, "IAM-C/valid.txt"], "test": ["IAM-C/test.txt"]},
}
SPLIT_SIZES = {"aachen": {"train": 6482, "val": 976, "test": 2915},
               "large": {"train": 6161, "val": 1840, "test": 1861}}
# IAM's own files of the large writer-independent task (largeWriterIndependentTextLineRecognitionTask.zip),
# read for ``large`` when the user's IAM folder holds them, in one of TASK_DIRS.
LARGE_TASK_FILES = {"train": ["trainset.txt"], "val": ["validationset1.txt", "validationset2.txt"],
                    "test": ["testset.txt"]}
TASK_DIRS = (".", "largeWriterIndependentTextLineRecognitionTask", "task")
IAM_LINES_VERSION = 1  # bump when a change alters any cached line
PARAGRAPH_MARGIN = 20  # form pixels of context around a paragraph's lines
DEFAULT_OPTIONS = {"splits": "aachen", "level": "lines", "err_lines": "keep", "text_source": "auto"}
GET_IAM = (
    "IAM cannot be redistributed: register (free for non-commercial research) at "
    "https://fki.tic.heia-fr.ch/databases/iam-handwriting-database (formerly "
    "www.fki.inf.unibe.ch/databases/iam-handwriting-database), download lines.tgz and xml.tgz (or ascii.tgz; "
    "formsA-D/E-H/I-Z.tgz for paragraphs), and extract them as ROOT/lines/, ROOT/xml/, ROOT/ascii/, "
    "ROOT/formsA-D/...; then point ocrbench at ROOT with data.root=ROOT (or $OCRBENCH_IAM)")


@dataclass
class IamLine:
    id: str
    text: str
    status: str  # "ok" or "err" (IAM's word segmentation result)
    bbox: tuple[float, float, float, float] | None  # x0, y0, x1, y1 on the form
    threshold: int | None = None  # IAM's binarisation grey level

    @property
    def form(self) -> str:
        return self.id.rsplit("-", 1)[0]


@dataclass
class IamForm:
    id: str
    writer: str | None
    width: int
    height: int
    lines: list[IamLine] = field(default_factory=list)


# ---- metadata ---------------------------------------------------------------------------------------------
def read_form_xml(path: str | Path) -> IamForm:
    """One ``xml/<form>.xml``: the writer, the form size and each handwritten line with its box (the union of
    its words' ``cmp`` component boxes)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise DataError(f"cannot parse IAM form metadata {path}: {e}") from None
    form = IamForm(root.get("id", path.stem), root.get("writer-id"), int(root.get("width", 0)),
                   int(root.get("height", 0)))
    for line in root.iter("line"):
        boxes = [(int(c.get("x")), int(c.get("y")), int(c.get("x")) + int(c.get("width")),
                  int(c.get("y")) + int(c.get("height"))) for c in line.iter("cmp")]
        bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes)) if boxes else None
        threshold = line.get("threshold")
        form.lines.append(IamLine(line.get("id", ""), line.get("text", ""), line.get("segmentation", "ok"),
                                  bbox, int(threshold) if threshold else None))
    return form


def read_lines_txt(path: str | Path) -> dict[str, IamLine]:
    """``ascii/lines.txt``: ``id status threshold components x y w h tok|tok|...`` per line (``#`` comments)."""
    out = {}
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None
    for n, row in enumerate(text.splitlines(), 1):
        if not row.strip() or row.startswith("#"):
            continue
        parts = row.split(" ", 8)
        if len(parts) < 9:
            raise DataError(f"{path}:{n}: expected 9 fields (id status threshold components x y w h text), "
                            f"got {row[:80]!r}")
        x, y, w, h = (int(v) for v in parts[4:8])
        out[parts[0]] = IamLine(parts[0], parts[8].replace("|", " "), parts[1], (x, y, x + w, y + h),
                                int(parts[2]))
    return out


@dataclass
class IamLayout:
    """Where the parts of an IAM folder are (any nesting below ``lines/``, ``xml/``, ``forms*/`` works)."""

    root: Path
    line_images: dict[str, Path]
    form_xml: dict[str, Path]
    form_images: dict[str, Path]
    lines_txt: Path | None

    @classmethod
    def scan(cls, root: Path) -> IamLayout:
        lines_txt = next((p for p in (root / "ascii" / "lines.txt", root / "lines.txt") if p.is_file()), None)
        form_dirs = [d for d in sorted(root.glob("forms*")) if d.is_dir()]
        return cls(root, _index(root / "lines", "*.png"), _index(root / "xml", "*.xml"),
                   {k: v for d in form_dirs for k, v in _index(d, "*.png").items()}, lines_txt)


def _index(folder: Path, pattern: str) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.rglob(pattern))} if folder.is_dir() else {}


@lru_cache(maxsize=8)
def _metadata(root: str, source: str, digest: str) -> dict[str, tuple[IamLine, str | None]]:
    """line id -> (line, writer id) for every line the folder describes (cached per process)."""
    layout = IamLayout.scan(Path(root))
    if source == "xml":
        out = {}
        for path in layout.form_xml.values():
            form = read_form_xml(path)
            out.update({line.id: (line, form.writer) for line in form.lines})
        return out
    return {k: (v, None) for k, v in read_lines_txt(layout.lines_txt).items()}


def text_source(layout: IamLayout, wanted: str) -> str:
    if wanted not in ("auto", "xml", "ascii"):
        raise UserError(f"iam option text_source must be auto, xml or ascii, got {wanted!r}")
    if wanted in ("auto", "xml") and layout.form_xml:
        return "xml"
    if wanted in ("auto", "ascii") and layout.lines_txt:
        return "ascii"
    looked = f"{layout.root / 'xml'}/*.xml" if wanted == "xml" else (
        f"{layout.root / 'ascii' / 'lines.txt'}" if wanted == "ascii" else
        f"{layout.root / 'xml'}/*.xml and {layout.root / 'ascii' / 'lines.txt'}")
    raise DataError(f"no IAM metadata found (looked for {looked}). {GET_IAM}")


# ---- splits -----------------------------------------------------------------------------------------------
def read_id_list(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text().splitlines() if s.strip() and not s.startswith("#")]


def task_dir(root: Path | None) -> Path | None:
    """The folder of the user's copy of IAM's large-task files under ``root``, or None."""
    if root is None:
        return None
    return next((root / d for d in TASK_DIRS if (root / d / LARGE_TASK_FILES["train"][0]).is_file()), None)


def split_file_ids(folder: Path, name: str) -> list[str]:
    """Line IDs of one list of the downloaded ``iam-splits`` (``VAL1`` is derived from two lists)."""
    if name == VAL1:
        second = set(read_id_list(folder / "IAM-C" / "valid.txt"))
        return [i for i in read_id_list(folder / "IAM-D" / "valid.txt") if i not in second]
    return read_id_list(folder / name)


def split_ids(convention: str | None, split: str, root: Path | None = None,
              cache_dir: str | None = None) -> list[str]:
    """Line IDs of ``split`` under ``convention`` (``aachen``, ``large`` or a folder of split files; None: the
    ``splits`` option's default). ``root``: the IAM folder, whose own task files ``large`` prefers."""
    convention = convention or DEFAULT_OPTIONS["splits"]
    if convention == "large" and (task := task_dir(root)) is not None:
        return [i for name in LARGE_TASK_FILES[split] for i in read_id_list(task / name)]
    if convention in SPLIT_FILES:
        folder, _ = require_dataset(SPLITS_DATASET, cache_dir)
        return [i for name in SPLIT_FILES[convention][split] for i in split_file_ids(folder, name)]
    folder = Path(convention).expanduser()
    path = folder / f"{split}.txt"
    if not path.is_file():
        raise UserError(f"iam option splits must be aachen, large or a folder with train.txt/val.txt/test.txt; "
                        f"{path} not found")
    return read_id_list(path)


# ---- the dataset ------------------------------------------------------------------------------------------
def parse_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``DataConfig.options`` of iam over :data:`DEFAULT_OPTIONS`, checked and normalised."""
    opts = resolve_options("iam", options, DEFAULT_OPTIONS)
    if opts["level"] not in ("lines", "paragraphs"):
        raise UserError(f"iam option level must be lines or paragraphs, got {opts['level']!r}")
    if opts["err_lines"] not in ("keep", "drop"):
        raise UserError(f"iam option err_lines must be keep or drop, got {opts['err_lines']!r}")
    return opts


def resolve_root(cfg: DataConfig) -> Path:
    root = cfg.root or os.environ.get("OCRBENCH_IAM")
    if not root:
        raise DataError(f"iam needs the IAM folder: set data.root=PATH (--set data.root=PATH) or $OCRBENCH_IAM. "
                        f"{GET_IAM}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"IAM folder {root} does not exist. {GET_IAM}")
    return root


class IamLines(CachedLines):
    """Split ``split`` of IAM at line or paragraph level (see the module docstring)."""

    def __init__(self, split: str, cfg: DataConfig):
        self.split, self.options = split, parse_options(cfg.options)
        self.root = resolve_root(cfg)
        self.layout = IamLayout.scan(self.root)
        if not self.layout.line_images and self.options["level"] == "lines":
            raise DataError(f"no line images under {self.root / 'lines'} (expected "
                            f"lines/a01/a01-000u/a01-000u-00.png). {GET_IAM}")
        self.source = text_source(self.layout, self.options["text_source"])
        meta_files = list(self.layout.form_xml.values()) if self.source == "xml" else [self.layout.lines_txt]
        meta = _metadata(str(self.root), self.source, integrity.files_digest(meta_files))
        self.charset = Charset(oov=cfg.oov)
        self.stats: Counter = Counter()
        ids = split_ids(self.options["splits"], split, self.root, cfg.cache_dir)
        missing = [i for i in ids if i not in meta]
        if missing:
            raise DataError(f"{len(missing)} of the {len(ids)} lines of IAM split {split!r} "
                            f"({self.options['splits']}) have no metadata in {self.root} (e.g. {missing[:3]}): the "
                            f"folder is incomplete. Run `ocrbench data check iam --root {self.root}`.")
        lines = [(meta[i][0], meta[i][1]) for i in ids]
        if self.options["err_lines"] == "drop":
            self.stats["dropped_err_lines"] = sum(line.status.startswith("er") for line, _ in lines)
            lines = [(line, w) for line, w in lines if not line.status.startswith("er")]
        self.records = (self._line_records(lines) if self.options["level"] == "lines"
                        else self._paragraph_records(lines, meta))
        key = {"version": IAM_LINES_VERSION, "root": str(self.root.resolve()), "split": split,
               "options": self.options, "source": self.source,
               "ids": hashlib.sha1("\n".join(r["id"] for r in self.records).encode()).hexdigest(),
               "files": integrity.files_digest(meta_files + [r["path"] for r in self.records])}
        super().__init__(f"iam-{self.options['level']}-{split}", cfg, key)

    def _prepare(self, text: str, item: str) -> str:
        try:
            return self.charset.prepare(text)
        except CharsetError as e:
            raise DataError(f"IAM line {item}: {e}. Set data.oov=replace to map such characters (counted).") \
                from None

    def _line_records(self, lines: list[tuple[IamLine, str | None]]) -> list[dict]:
        records = []
        for line, writer in lines:
            path = self.layout.line_images.get(line.id) or self.root / "lines" / line.id[:3] / line.form / (
                line.id + ".png")  # a missing image is reported (or skipped) when the cache is built
            records.append({"id": line.id, "path": path, "text": self._prepare(line.text, line.id),
                            "writer": writer, "status": line.status, "box": None})
        return records

    def _paragraph_records(self, lines: list[tuple[IamLine, str | None]], meta: Mapping) -> list[dict]:
        forms: dict[str, str | None] = {}
        for line, writer in lines:
            forms.setdefault(line.form, writer)
        all_lines: dict[str, list[IamLine]] = {}
        for line, _ in meta.values():
            if line.form in forms:
                all_lines.setdefault(line.form, []).append(line)
        records = []
        for form, writer in forms.items():
            form_lines = sorted(all_lines[form], key=lambda ln: ln.id)
            boxes = [ln.bbox for ln in form_lines if ln.bbox]
            box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                   max(b[3] for b in boxes)) if boxes else None
            text = " ".join(ln.text for ln in form_lines)
            path = self.layout.form_images.get(form) or self.root / "forms" / f"{form}.png"
            records.append({"id": form, "path": path, "text": self._prepare(text, form), "writer": writer,
                            "status": "ok", "box": box})
        return records

    def render_all(self):
        for r in self.records:
            problem = integrity.check_image(r["path"])
            if problem:
                yield r["id"], None, r["text"], r["path"], problem
                continue
            gray = read_gray(r["path"])
            if r["box"] is not None:
                x0, y0, x1, y1 = r["box"]
                m = PARAGRAPH_MARGIN
                gray = gray[max(0, y0 - m):y1 + m, max(0, x0 - m):x1 + m]
            if gray.size == 0:
                yield r["id"], None, r["text"], r["path"], "empty crop (box outside the image)"
                continue
            yield r["id"], scan_to_ink(gray), r["text"], r["path"], None

    def sample_meta(self, index: int) -> dict:
        r = self.records[self._record_index(index)]
        return {"id": r["id"], "writer": r["writer"], "segmentation": r["status"]}


def iam_pages(root: str | Path, split: str | None = None, splits: str | None = None) -> list[Page]:
    """IAM forms as :class:`~ocrbench.datasets.xml_pages.page.Page` objects (form scan + handwritten line boxes from
    ``xml/``), for page-level tools; with ``split``, only the forms of that split."""
    layout = IamLayout.scan(Path(root))
    if not layout.form_xml:
        raise DataError(f"no IAM form metadata under {Path(root) / 'xml'}. {GET_IAM}")
    wanted = {i.rsplit("-", 1)[0] for i in split_ids(splits, split, Path(root))} if split else None
    pages = []
    for form_id, xml_path in sorted(layout.form_xml.items()):
        if wanted is not None and form_id not in wanted:
            continue
        form = read_form_xml(xml_path)
        lines = [TextLine(ln.id, [(b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3])], b, None, ln.text,
                          "Handwritten") for ln in form.lines if (b := ln.bbox)]
        image = layout.form_images.get(form_id, Path(root) / "forms" / f"{form_id}.png")
        pages.append(Page(image, form.width, form.height, lines, xml_path, "iam"))
    return pages


@register_dataset(
    "iam",
    description="IAM Handwriting Database lines/paragraphs, Aachen or 'large' split (user-supplied: data.root)",
    license="IAM: free for non-commercial research after registration; no redistribution",
    citation="Marti & Bunke: The IAM-database: an English sentence database for offline handwriting "
    "recognition, IJDAR 5(1), 2002",
    needs_root=True,
    sizes="aachen: train 6,482 / val 976 / test 2,915 lines; large: train 6,161 / val 1,840 (900 + 940) / "
    "test 1,861 lines; 13,353 lines, 1,539 forms, 657 writers in all",
    charset="IAM (79 symbols)",
)
def iam(split: str, cfg: DataConfig) -> IamLines:
    return IamLines(split, cfg)


# ---- ocrbench data check iam ------------------------------------------------------------------------------
@register_check("iam")
def check_iam(root: Path, splits: str | None = None, decode: bool = True, **_) -> integrity.CheckReport:
    """Validate an IAM folder: layout, metadata, and every line image of ``splits`` (decoded)."""
    report = integrity.CheckReport("iam", root)
    if not root.is_dir():
        report.fail(f"{root} does not exist or is not a folder", GET_IAM)
        return report
    layout = IamLayout.scan(root)
    report.counts.update({"line images": len(layout.line_images), "form XML files": len(layout.form_xml),
                          "form images": len(layout.form_images)})
    if not layout.line_images:
        report.fail(f"no line images found under {root / 'lines'} (expected lines/a01/a01-000u/a01-000u-00.png)")
    if not layout.form_xml and not layout.lines_txt:
        report.fail(f"no metadata: neither {root / 'xml'}/*.xml nor {root / 'ascii' / 'lines.txt'}")
    if not report.ok:
        report.hint = GET_IAM
        return report
    source = "xml" if layout.form_xml else "ascii"
    try:
        meta = _metadata(str(root), source, integrity.files_digest(
            list(layout.form_xml.values()) if source == "xml" else [layout.lines_txt]))
    except DataError as e:
        report.fail(str(e), GET_IAM)
        return report
    report.counts["lines described"] = len(meta)
    report.counts["err lines"] = sum(line.status.startswith("er") for line, _ in meta.values())
    report.notes.append(f"metadata from {source}")
    _check_splits(report, root, splits, layout, meta, decode)
    _compare_task_files(report, root)
    return report


def _check_splits(report, root: Path, splits: str | None, layout: IamLayout, meta: Mapping, decode: bool) -> None:
    for split in ("train", "val", "test"):
        try:
            ids = split_ids(splits, split, root)
        except UserError as e:
            report.fail(str(e))
            return
        no_meta = [i for i in ids if i not in meta]
        present = [i for i in ids if i in layout.line_images]
        expected = SPLIT_SIZES.get(splits, {}).get(split)
        report.counts[f"{split} lines ({splits})"] = f"{len(present):,} of {len(ids):,} present" + (
            f" (published: {expected:,})" if expected else "")
        if no_meta:
            report.fail(f"{split}: {len(no_meta)} line(s) without metadata, e.g. {', '.join(no_meta[:3])}")
        for i in ids:
            if i not in layout.line_images:
                report.bad(root / "lines" / i[:3] / i.rsplit("-", 1)[0] / f"{i}.png", "missing", i)
            elif decode and (problem := integrity.check_image(layout.line_images[i])):
                report.bad(layout.line_images[i], problem, i)
    if report.bad_files:
        report.hint = (f"re-extract lines.tgz into {root / 'lines'} (missing or corrupt files are listed above), "
                       f"or {integrity.SKIP_HINT}")


def _compare_task_files(report, root: Path) -> None:
    """Cross-check the user's copy of IAM's large-task files (which ``large`` then reads) against the downloaded
    IAM-C lists, when both are there."""
    task = task_dir(root)
    if task is None:
        return
    try:
        folder, _ = require_dataset(SPLITS_DATASET)
    except DataError as e:
        report.notes.append(f"IAM's large-task files found in {task}; not compared: {e}")
        return
    for split, names in LARGE_TASK_FILES.items():
        for theirs, ours in zip(names, SPLIT_FILES["large"][split]):
            path = task / theirs
            if path.is_file():
                same = set(read_id_list(path)) == set(split_file_ids(folder, ours))
                report.notes.append(f"{path.name} {'matches' if same else 'DIFFERS FROM'} iam-splits {ours}")

