"""ALTO v4 and PAGE 2013 page XML: parsing, and the ``alto:PATH`` / ``pagexml:PATH`` line-crop datasets.

One module per job: :mod:`.page` (the page model and XML helpers), :mod:`.alto` and :mod:`.pagexml` (the
parsers), :mod:`.folder` (any XML file, a folder, a page's scan), :mod:`.conventions` (transcription
conventions), :mod:`.lines` (the line datasets), :mod:`.check` (``ocrbench data check``).

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
  :func:`ocrbench.data.images.scan_to_ink`), resized to ``cfg.height`` and cached on disk (``<cache>/lines/``);
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

from . import check  # noqa: F401  (registers ``ocrbench data check alto|pagexml``)
from .alto import read_alto
from .conventions import CONVENTION_MODES, apply_conventions
from .folder import load_page_image, read_page, read_page_folder, xml_format
from .lines import DEFAULT_OPTIONS, XmlLines, crop_line
from .page import Page, TextLine, find_image, parse_points
from .pagexml import read_pagexml

__all__ = ["CONVENTION_MODES", "DEFAULT_OPTIONS", "Page", "TextLine", "XmlLines", "apply_conventions", "crop_line",
           "find_image", "load_page_image", "parse_points", "read_alto", "read_page", "read_page_folder",
           "read_pagexml", "xml_format"]
