"""The page pipeline: detect text lines, order them top to bottom, crop, recognize; and its scoring.

``transcribe_page`` turns an image file (any size or mode: grayscale, RGB, palette, 16-bit, very large
scans) or an array into a :class:`PageResult` (boxes in the page's own pixels, scores, texts, the page text).
``evaluate_detector`` scores a detector on a page dataset (AP@0.5, AP@[.5:.95], P/R/F1 at IoU 0.5, pages/s);
``evaluate_pages`` runs the whole pipeline on pages with transcriptions and reports page-level CER: the
recognized lines joined in reading order against the reference lines joined in theirs.

One module per job: :mod:`.loading` (image files, real pages from XML), :mod:`.detection` (boxes of one
forward pass, reading order), :mod:`.recognition` (crops, transcriptions), :mod:`.transcribe` (the pipeline),
:mod:`.scoring`, :mod:`.cost` (the detector table's cost columns), :mod:`.drawing`. Scans become ink-bright
arrays through :func:`ocrbench.data.images.to_ink_bright`, the conversion the real-data datasets use.
"""

from ..data.images import to_ink_bright
from .cost import detector_cost
from .detection import detect_lines, detect_lines_at, forward_once, reading_order
from .drawing import draw_boxes
from .loading import MAX_PIXELS, WORK_SIDE, load_image, page_sample_from_xml, stored_size
from .recognition import crop_lines, recognize
from .scoring import AP_SCORE_FLOOR, evaluate_detector, evaluate_pages
from .transcribe import PageResult, read_lines, transcribe_page

__all__ = ["AP_SCORE_FLOOR", "MAX_PIXELS", "WORK_SIDE", "PageResult", "crop_lines", "detect_lines", "detect_lines_at",
           "detector_cost", "draw_boxes", "evaluate_detector", "evaluate_pages", "forward_once", "load_image",
           "page_sample_from_xml", "read_lines", "reading_order", "recognize", "stored_size", "to_ink_bright",
           "transcribe_page"]
