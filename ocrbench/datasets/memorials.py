"""``stanford-memorials``: real handwritten lines of 1905 letters and notes, downloaded on request, for
evaluation only.

The *Memorials for Jane Lathrop Stanford* dataset (Stanford University Archives, transcribed in eScriptorium by
Guimarães, Maurel and Ozturk; ALTO 4 + JPG, CC-BY 4.0): 41 pages, fetched and verified by
``ocrbench data download stanford-memorials`` (pinned in :data:`ocrbench.data.sources.STANFORD_MEMORIALS`) into
``<cache>/datasets/stanford-memorials/``. Nothing is packaged; when the folder is absent the factory raises
:class:`~ocrbench.errors.NotDownloaded`, naming the folder searched and the command to run, so a suite can skip
this evaluation set and say so.

The lines are read by :class:`~ocrbench.datasets.xml_pages.lines.XmlLines` over that folder, so cropping,
``scan_to_ink``, resizing to ``data.height`` and the on-disk cache are those of ``alto:PATH``. The folder has
no split files, so it serves **only** ``test``: every ``Handwritten`` line of the 41 pages (355 lines with text;
Typewritten, Print and Signature lines are filtered and counted in ``dataset.stats``). Never train, tune or
select models on them.

Characters: with the default transcription conventions (``^`` superscripts stripped, ``⟦ ⟧`` struck-out text
dropped) every character but one is in ``IAM_CHARS``: ``ᗅ`` (U+15C5) in "Palo ᗅlto" (Lettre242). The dataset
therefore always reads with ``oov="replace"`` (whatever ``data.oov`` says): that character becomes the
replacement symbol and is counted in ``dataset.charset.stats``, never rewritten silently.

Provenance reaches the records: ``dataset.version`` is the download's version (a digest of the XML files only,
so a mirror of reduced images and the full-resolution originals share it) and ``dataset.image_source`` is
``original`` or ``mirror (reduced copy)`` (from ``MANIFEST.json``).
"""

from __future__ import annotations

from dataclasses import replace

from ..config import DataConfig
from ..data.download import require_dataset
from ..data.registry import register_dataset
from ..data.sources import STANFORD_MEMORIALS
from .xml_pages.lines import XmlLines

NAME = "stanford-memorials"
_DESCRIPTION = ("Real handwritten lines of 41 pages of 1905 letters and notes (Memorials for Jane Lathrop "
                "Stanford, ALTO); `ocrbench data download stanford-memorials`; evaluation only: never for "
                "training, tuning or model selection")


@register_dataset(NAME, splits=("test",), description=_DESCRIPTION, license=STANFORD_MEMORIALS.license,
                  citation=STANFORD_MEMORIALS.citation,
                  sizes="test 355 handwritten lines (41 pages, 8,283 characters; download: 83 files, 74.7 MB)",
                  charset="IAM (79 symbols); 1 character outside it (replaced and counted)")
def stanford_memorials(split: str, cfg: DataConfig) -> XmlLines:
    folder, manifest = require_dataset(NAME, cfg.cache_dir)
    dataset = XmlLines(split, replace(cfg, root=str(folder), oov="replace"), "alto")
    dataset.version = manifest["version"]  # into each record's data_version (ocrbench.bench.suite)
    dataset.image_source = manifest["image_source"]
    return dataset
