"""``stanford-memorials``: real handwritten lines of two 1905 letters, built in, for evaluation only.

Two pages of the *Memorials for Jane Lathrop Stanford* dataset (Stanford University Archives collection
SC0033B, per the file names; transcribed in eScriptorium; ALTO 4 + JPG), vendored with their ``CITATION.cff``
in ``assets/alto/stanford-memorials/``: a note signed C. F. Wright about University of the Pacific delegates
(i083) and a letter of the Century Club of California to David Starr Jordan (i084). Nothing is downloaded
and nothing outside the package is read.

The lines are read by :class:`~ocrbench.data.xml_pages.lines.XmlLines` over the packaged folder, so cropping,
``scan_to_ink``, resizing to ``data.height`` and the on-disk cache are those of ``alto:PATH``. The folder
has no split files, so it serves **only** ``test``: every ``Handwritten`` line of both pages (26 lines,
523 characters; the 2 printed letterhead lines are filtered and counted in ``dataset.stats``). These are
real cursive lines for measuring how models trained on synthetic or IAM lines transfer. Never train, tune or
select models on them: at 26 lines any such use would overfit the test set.

Characters: with the default transcription conventions (``^`` superscripts stripped, ``⟦ ⟧`` struck-out
text dropped, see :func:`~ocrbench.data.xml_pages.conventions.apply_conventions`) every character is in ``IAM_CHARS``,
so the dataset honours ``data.oov`` as given and needs no replacement: under the default ``error`` policy a
future edit that brought an out-of-charset character in would fail loudly instead of being rewritten.
``data.options`` (``line_types``, ``polygon_mask``, ``padding``, conventions) are those of ``alto:PATH``;
``data.root`` is ignored (the data is the packaged folder).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .registry import DataConfig, register_dataset
from .xml_pages.lines import XmlLines

MEMORIALS_DIR = Path(__file__).parent / "assets" / "alto" / "stanford-memorials"

_DESCRIPTION = ("Real handwritten lines of two 1905 letters (Memorials for Jane Lathrop Stanford, ALTO), built "
                "in; evaluation only: never for training, tuning or model selection")
_LICENSE = "CC-BY 4.0 (attribution: cite the dataset)"
_CITATION = ("Guimarães, I., Maurel, P., Ozturk, Y., Chagué, A. (2022). Memorials for Jane Lathrop Stanford "
             "(version 1.0) [dataset]. Zenodo. https://doi.org/10.5281/zenodo.6126625")


@register_dataset("stanford-memorials", splits=("test",), description=_DESCRIPTION, license=_LICENSE,
                  citation=_CITATION, sizes="test 26 handwritten lines (2 pages, 523 characters)",
                  charset="IAM (79 symbols); all characters in charset")
def stanford_memorials(split: str, cfg: DataConfig) -> XmlLines:
    return XmlLines(split, replace(cfg, root=str(MEMORIALS_DIR)), "alto")
