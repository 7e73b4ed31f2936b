"""``copiste-dun-jour``: real handwriting for training and testing, downloaded on request: the real track's data.

*Copiste d'un jour* (Bibliothèque et Archives nationales du Québec, 2024; ALTO 4 + JPG from eScriptorium, CC BY
4.0): 333 pages of texts copied by hand by many volunteer writers, in French, fetched and verified by ``ocrbench
data download copiste-dun-jour`` (pinned in :data:`ocrbench.data.sources.COPISTE_DUN_JOUR`) into
``<cache>/datasets/copiste-dun-jour/``. Nothing is packaged; without the folder the factory raises
:class:`~ocrbench.errors.NotDownloaded` naming the command.

**Splits by document** (:func:`document_splits`, written on download): the pages of one text and a text's second
copy stay together, documents in SHA-1 order of their id, cut at 80% / 90% of the lines: train 5,067 / val 645 /
test 614 non-empty lines. Every line of a page is kept (the collection tags them all ``default``).

**Charset from the training split** (option ``charset: train``, the default here): the characters seen at least
``charset_min_count`` (5) times in the training transcriptions, in code-point order, plus U+FFFD; a rarer
character becomes its base letter when that is kept (``Ê`` → ``E``), else U+FFFD, and every mapping is counted
(``oov_replaced_train/test`` in the records). Accents are real characters here: é, à, è, ç, ê... are classes.
Markup is kept as written: ``>word<`` marks crossed-out text and ``><`` an unreadable passage.

Each line's ``document`` (for the leaderboard's bootstrap over test documents) is :func:`document_id` of its page.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

from ..config import DataConfig
from ..data.download import postprocess, require_dataset
from ..data.registry import register_dataset
from ..data.sources import COPISTE_DUN_JOUR
from ..records import atomic_write_text
from .xml_pages.alto import read_alto
from .xml_pages.lines import XmlLines

NAME = "copiste-dun-jour"
_DESCRIPTION = ("Real handwriting: 333 pages of French texts copied by many volunteer writers in 2024 (BAnQ, "
                "ALTO), split by document; `ocrbench data download copiste-dun-jour`")
DEFAULTS = {"line_types": "all", "charset": "train"}  # over xml_pages' options; a suite's data.options win


@register_dataset(NAME, description=_DESCRIPTION, license=COPISTE_DUN_JOUR.license, citation=COPISTE_DUN_JOUR.citation,
                  sizes="train 5,067 / val 645 / test 614 lines (212 / 26 / 27 documents; download: 667 files, "
                        "301.6 MB)",
                  charset="the train split's characters seen >= 5 times (112 + U+FFFD)")
def copiste_dun_jour(split: str, cfg: DataConfig) -> XmlLines:
    folder, manifest = require_dataset(NAME, cfg.cache_dir)
    dataset = XmlLines(split, replace(cfg, root=str(folder), options={**DEFAULTS, **cfg.options}), "alto",
                       document_of=document_id)
    dataset.version = manifest["version"]
    dataset.image_source = manifest["image_source"]
    return dataset


# ---- the recipe's postprocess: splits by document -----------------------------------------------------------
SPLIT_CUTS = (0.8, 0.9)  # cumulative share of the lines where train ends and where val ends
_PAGE_SUFFIX = re.compile(r"_(?:[1-9]|double)$")


def document_id(stem: str) -> str:
    """A page's document: its stem without ``_1``/``_2``/``_3`` page suffixes and ``_double`` (a text's second
    copy), so every page and copy of one text falls in the same split."""
    while (shorter := _PAGE_SUFFIX.sub("", stem)) != stem:
        stem = shorter
    return stem


@postprocess("document_splits")
def document_splits(folder: Path) -> list[str]:
    """Write ``train.txt``/``val.txt``/``test.txt`` (page stems, sorted) for a folder of ALTO pages: documents
    in SHA-1 order of their id, each into the split where the lines before it end (cuts at 80% / 90% of the
    non-empty lines). SHA-1 order is a fixed shuffle that needs no seed and no random generator."""
    lines = {p.stem: sum(bool(t.text.strip()) for t in read_alto(p).lines) for p in sorted(folder.glob("*.xml"))}
    docs: dict[str, list[str]] = {}
    for stem in lines:
        docs.setdefault(document_id(stem), []).append(stem)
    total, before = sum(lines.values()), 0
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for doc in sorted(docs, key=lambda d: hashlib.sha1(d.encode()).hexdigest()):
        split = "train" if before < SPLIT_CUTS[0] * total else "val" if before < SPLIT_CUTS[1] * total else "test"
        splits[split] += docs[doc]
        before += sum(lines[s] for s in docs[doc])
    for split, stems in splits.items():
        atomic_write_text(folder / f"{split}.txt", "".join(f"{s}\n" for s in sorted(stems)))
    return [f"{split}.txt" for split in splits]
