"""``ocrbench data check alto:PATH`` / ``pagexml:PATH``: the folder's files, and every line cropped as loading would."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

from ...config import DataConfig
from ...data import integrity
from ...data.registry import register_check
from ...errors import DataError
from .folder import read_page_folder
from .lines import SPLIT_FILES, XmlLines


@register_check("alto")
def check_alto(root: str | Path, **_) -> integrity.CheckReport:
    return _check_folder(Path(root), "alto")


@register_check("pagexml")
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
        for item, _, _, source, error in lines.checked_lines():
            if error is not None:
                report.bad(source, error, item)
    replaced = lines.charset.stats.replaced
    if replaced:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X}) x{n}" for c, n in replaced.most_common(10))
        report.notes.append(f"split {split}: {replaced.total()} characters outside the charset: {shown}; "
                            "eval replaces and counts them, training needs data.oov=replace")
