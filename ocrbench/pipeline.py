"""The page pipeline: detect text lines, order them top to bottom, crop, recognize; and its scoring.

``transcribe_page`` turns an image file (any size or mode: grayscale, RGB, palette, 16-bit, very large
scans) or an array into a :class:`PageResult` (boxes in the page's own pixels, scores, texts, the page text).
``evaluate_detector`` scores a detector on a page dataset (AP@0.5, AP@[.5:.95], P/R/F1 at IoU 0.5, pages/s);
``evaluate_pages`` runs the whole pipeline on pages with transcriptions and reports page-level CER: the
recognized lines joined in reading order against the reference lines joined in theirs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps
from torch.utils.data import DataLoader, Dataset

from .data.base import LineSample
from .data.synth_pages import PageSample
from .errors import DataError, UserError
from .metrics import DetectionCounts, ErrorCounts
from .models.detection import resize_page
from .progress import progress_bar
from .runtime import autocast, make_collator, resolve_device, set_matmul_precision, sync

MAX_PIXELS = 1_000_000_000  # refuse only absurd images (Pillow's own bomb guard stops at ~179 MP)
WORK_SIDE = 4000  # pages are decoded at most this long: plenty for 32-64 px line crops, cheap to handle
AP_SCORE_FLOOR = 0.01  # detections kept for the precision-recall curve


# ---- images -----------------------------------------------------------------------------------------------
def load_image(path: str | Path, max_side: int = WORK_SIDE) -> np.ndarray:
    """An image file as uint8 grayscale, as stored (a scan has dark ink), its long side at most ``max_side``.

    Any Pillow-readable format and mode: RGB(A) and LA are put on white, palette and CMYK converted, 16/32-bit
    rescaled; EXIF orientation applied; JPEGs larger than ``max_side`` are decoded at a reduced scale.
    Raises :class:`DataError` naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
    try:
        with Image.open(path) as im:
            if max(im.size) > max_side:
                im.draft("L", (max(1, im.size[0] * max_side // max(im.size)), max(1, im.size[1] * max_side // max(im.size))))
            im = ImageOps.exif_transpose(im)
            gray = _to_gray(im)
    except Exception as e:  # truncated, not an image, unsupported mode...
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if max(gray.shape) > max_side:
        gray, _, _ = resize_page(gray, np.zeros((0, 4), np.float32), max_side)
    return gray


def stored_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file as displayed (EXIF orientation applied), without decoding it."""
    with Image.open(path) as im:
        w, h = im.size
        rotated = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # orientations that turn the image by 90°
    return (h, w) if rotated else (w, h)


def _to_gray(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        return ((a - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("L"))


def to_ink_bright(gray: np.ndarray, ink: str = "auto") -> np.ndarray:
    """The ocrbench convention (ink bright on dark). ``ink="dark"``: a scan, inverted with its paper level
    moved to 0 and its ink stretched (``xml_pages.scan_to_ink``); ``"bright"``: used as is; ``"auto"``:
    dark when most of the page is light."""
    if ink not in ("auto", "dark", "bright"):
        raise UserError(f"ink must be auto, dark or bright, got {ink!r}")
    if ink == "auto":
        ink = "dark" if float(np.median(gray)) > 127 else "bright"
    if ink == "bright":
        return np.ascontiguousarray(gray, dtype=np.uint8)
    from .data.xml_pages import scan_to_ink

    return scan_to_ink(gray)


# ---- detection --------------------------------------------------------------------------------------------
def detect_lines(detector, page: np.ndarray, score_threshold: float | None = None, device: str = "auto"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Line boxes (N, 4) in ``page`` pixels and their scores, for an ink-bright page of any size."""
    dev = resolve_device(device)
    detector.to(dev).eval()
    batch = detector.collate([PageSample(page, np.zeros((0, 4), np.float32), [])])
    ((boxes, scores),) = detector.predict(batch.images.to(dev), batch.sizes.to(dev), score_threshold)
    scale = float(batch.scales[0])
    return boxes.float().cpu().numpy() / scale, scores.float().cpu().numpy()


def reading_order(boxes: np.ndarray) -> list[int]:
    """Indices of ``boxes`` top to bottom; boxes side by side on one text row (vertical centres within half
    a line height of the row's first box) left to right."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    order, rows = list(np.argsort(cy, kind="stable")), []
    for i in order:
        if rows and abs(cy[i] - cy[rows[-1][0]]) < 0.5 * min(h[i], h[rows[-1][0]]):
            rows[-1].append(i)
        else:
            rows.append([i])
    return [int(i) for row in rows for i in sorted(row, key=lambda k: boxes[k, 0])]


def crop_lines(page: np.ndarray, boxes: np.ndarray, pad: float = 0.08) -> list[np.ndarray]:
    """Crops of an ink-bright page, each box grown by ``pad`` of its height on every side (clipped)."""
    H, W = page.shape
    crops = []
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        m = pad * max(y1 - y0, 1.0)
        a, b = int(max(0, np.floor(x0 - m))), int(max(0, np.floor(y0 - m)))
        c, d = int(min(W, np.ceil(x1 + m))), int(min(H, np.ceil(y1 + m)))
        crops.append(page[b:max(d, b + 1), a:max(c, a + 1)])
    return crops


# ---- recognition ------------------------------------------------------------------------------------------
@torch.no_grad()
def recognize(recognizer, crops: Sequence[np.ndarray], batch_size: int = 16, device: str = "auto",
              decoder: str = "greedy") -> list[str]:
    """Transcriptions of ink-bright line crops (any height: the recognizer's collator resizes them)."""
    if not crops:
        return []
    dev = resolve_device(device)
    recognizer.to(dev).eval()
    collate = make_collator(recognizer, recognizer.charset, recognizer.info.input_height)
    texts: list[str] = []
    for k in range(0, len(crops), batch_size):
        batch = collate([LineSample(c, "") for c in crops[k:k + batch_size]]).to(dev)
        texts += recognizer.predict(batch.images, batch.widths, decoder=decoder)
    return texts


# ---- the pipeline -----------------------------------------------------------------------------------------
@dataclass
class PageResult:
    width: int
    height: int
    lines: list[dict] = field(default_factory=list)  # {"box": [x0, y0, x1, y1], "score": s, "text": t}, in reading order
    source: str = ""

    @property
    def text(self) -> str:
        return "\n".join(line["text"] for line in self.lines)

    @property
    def boxes(self) -> np.ndarray:
        return np.array([line["box"] for line in self.lines], dtype=np.float32).reshape(-1, 4)

    def as_dict(self) -> dict:
        return {"source": self.source, "width": self.width, "height": self.height, "lines": self.lines,
                "text": self.text}


def transcribe_page(image: str | Path | np.ndarray, detector, recognizer, *, ink: str = "auto",
                    score_threshold: float | None = None, device: str = "auto", batch_size: int = 16) -> PageResult:
    """Detect, order, crop and recognize the lines of one page. ``image`` is a file or a uint8 array
    (``ink`` says which way round its ink is: ``dark`` for scans, ``bright`` for ocrbench arrays)."""
    source = str(image) if not isinstance(image, np.ndarray) else "<array>"
    gray = load_image(image) if not isinstance(image, np.ndarray) else image
    if gray.ndim != 2:
        raise UserError(f"a page array must be 2-D grayscale, got shape {gray.shape}")
    # boxes are reported in the file's own pixels, although a page over WORK_SIDE is processed downscaled
    width, height = stored_size(image) if not isinstance(image, np.ndarray) else (gray.shape[1], gray.shape[0])
    page = to_ink_bright(gray, ink)
    boxes, scores = detect_lines(detector, page, score_threshold, device)
    order = reading_order(boxes)
    boxes, scores = boxes[order], scores[order]
    texts = recognize(recognizer, crop_lines(page, boxes), batch_size, device) if recognizer is not None else [""] * len(boxes)
    to_file = np.array([width / page.shape[1], height / page.shape[0]] * 2, dtype=np.float32)
    lines = [{"box": [round(float(v), 1) for v in b * to_file], "score": round(float(s), 4), "text": t}
             for b, s, t in zip(boxes, scores, texts)]
    return PageResult(width=width, height=height, lines=lines, source=source)


# ---- scoring ----------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_detector(model, dataset: Dataset, batch_size: int = 8, device: str = "auto", precision: str = "fp32",
                      score_threshold: float | None = None, progress: bool = False) -> dict:
    """AP@0.5 (``ap50``), AP@[.5:.95] (``ap``) from detections down to score 0.01; precision (``p50``), recall
    (``r50``) and ``f1`` at IoU 0.5 at the model's operating threshold; throughput (``eval_pages_per_s``:
    forward + NMS, data loading excluded)."""
    dev = resolve_device(device)
    set_matmul_precision(dev, precision)  # no TF32 unless "tf32" (torch's default allows it in cuDNN convs)
    model.to(dev).eval()
    threshold = model.score_threshold if score_threshold is None else score_threshold
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=model.collate)
    counts, seconds = DetectionCounts(), 0.0
    for batch in progress_bar(loader, progress, desc="eval detector"):
        batch = batch.to(dev)
        t0 = time.perf_counter()
        with autocast(dev, precision):
            preds = model.predict(batch.images, batch.sizes, score_threshold=min(AP_SCORE_FLOOR, threshold))
        sync(dev)
        seconds += time.perf_counter() - t0
        for (boxes, scores), gt in zip(preds, batch.boxes):
            counts.update(boxes.float().cpu().numpy(), scores.float().cpu().numpy(), gt.cpu().numpy())
    out = counts.summary(threshold)
    # record keys: "precision" in a run record is the numeric precision (fp32...), so P/R are p50/r50 here
    out["p50"], out["r50"] = out.pop("precision"), out.pop("recall")
    out.update(eval_seconds=round(seconds, 4), eval_pages_per_s=round(counts.pages / seconds, 3) if seconds else 0.0)
    return out


def detector_cost(model, dataset: Dataset, batch_size: int = 8, device: str = "auto", precision: str = "fp32"
                  ) -> dict:
    """Cost columns of the detector table: GFLOPs of one forward pass over a page of the model's size
    (portrait, 3:4), and the memory of one training step at ``batch_size`` in ``precision`` (the training
    precision: autocast halves most activations): peak CUDA memory on a GPU, the bytes autograd saves for
    backward (activations) on a CPU. Uses :mod:`ocrbench.profile`; a measurement that fails is left out with
    its error, never raised (bf16/fp16 on a CPU: refused, as in training)."""
    import copy

    out: dict = {}
    try:
        from .profile import count_flops, cuda_peak_memory, saved_activation_bytes
    except ImportError as e:  # the profile package is optional here
        return {"cost_error": f"ocrbench.profile unavailable: {e}"}
    dev = resolve_device(device)
    side = model.info.input_height
    multiple = model.info.min_width
    page = torch.zeros(1, 1, side, -(-int(0.75 * side) // multiple) * multiple)
    try:
        count = count_flops(copy.deepcopy(model).cpu(), page)
        out.update(gflops_per_page=round(count.flops / 1e9, 4), flops_page_size=list(page.shape[-2:]))
        if count.uncounted_matmul_ops:
            out["flops_uncounted_ops"] = count.uncounted_matmul_ops
    except Exception as e:
        out["flops_error"] = f"{type(e).__name__}: {e}"
    try:
        probe = copy.deepcopy(model).to(dev).train()  # a copy: a training step moves batch-norm statistics
        batch = probe.collate([dataset[i % len(dataset)] for i in range(batch_size)]).to(dev)

        def loss() -> torch.Tensor:
            with autocast(dev, precision):
                return probe.loss(batch)

        if dev.type == "cuda":
            with cuda_peak_memory(dev) as mem:
                loss().backward()
            out["peak_memory_mib"] = round(mem["allocated"] / 2**20, 1)
        else:
            nbytes, _ = saved_activation_bytes(loss, exclude=list(probe.parameters()))
            out["activation_memory_mib"] = round(nbytes / 2**20, 1)
        out.update(memory_batch_size=batch_size, memory_precision=precision)
    except Exception as e:
        out["memory_error"] = f"{type(e).__name__}: {e}"
    return out


def page_sample_from_xml(xml_path: str | Path, line_types: Iterable[str] | None = None,
                         superscript: str = "strip", strikethrough: str = "drop") -> PageSample:
    """A real page (ALTO or PAGE XML and its image) as an ink-bright :class:`PageSample` at full resolution;
    ``line_types`` keeps only those types (e.g. ``["Handwritten"]``); the transcription conventions are
    applied as in the line datasets (``xml_pages.apply_conventions``)."""
    from .data.xml_pages import apply_conventions, load_page_image, read_page

    page = read_page(xml_path)
    types = {t.lower() for t in line_types} if line_types else None
    lines = [ln for ln in page.lines if types is None or (ln.line_type or "").lower() in types]
    image = to_ink_bright(load_page_image(page), "dark")
    sy, sx = image.shape[0] / page.height, image.shape[1] / page.width
    boxes = np.array([[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in (ln.bbox for ln in lines)],
                     dtype=np.float32).reshape(-1, 4)
    texts = [apply_conventions(ln.text, superscript, strikethrough) for ln in lines]
    return PageSample(image, boxes, texts, {"xml": str(xml_path), "image": str(page.image_path)})


def evaluate_pages(pages: Iterable[PageSample], detector, recognizer=None, score_threshold: float | None = None,
                   device: str = "auto") -> dict:
    """The whole pipeline on ink-bright pages with reference boxes and texts: detection AP and P/R/F1 (in
    page pixels), and page-level CER/WER (recognized lines in reading order vs. the reference lines in their
    order, each joined with spaces; corpus-level over pages)."""
    threshold = detector.score_threshold if score_threshold is None else score_threshold
    counts, errors, per_page = DetectionCounts(), ErrorCounts(), []
    for sample in pages:
        boxes, scores = detect_lines(detector, sample.image, AP_SCORE_FLOOR, device)
        counts.update(boxes, scores, sample.boxes)
        result = transcribe_page(sample.image, detector, recognizer, ink="bright", score_threshold=threshold,
                                 device=device)
        entry = {"lines": len(result.lines), "gt_lines": len(sample.boxes), **{k: v for k, v in sample.meta.items()}}
        if recognizer is not None:
            hyp, ref = " ".join(line["text"] for line in result.lines), " ".join(sample.texts)
            page_errors = ErrorCounts().update([hyp], [ref])
            errors.update([hyp], [ref])
            entry.update(cer=page_errors.cer, hyp=hyp, ref=ref)
        per_page.append(entry)
    out = counts.summary(threshold)
    if recognizer is not None:
        out.update(page_cer=errors.cer, page_wer=errors.wer)
    out["per_page"] = per_page
    return out


# ---- pictures ---------------------------------------------------------------------------------------------
def draw_boxes(page: np.ndarray, predicted: np.ndarray | None = None, truth: np.ndarray | None = None,
               texts: Sequence[str] | None = None, ink_bright: bool = True) -> Image.Image:
    """The page as paper (dark ink on white) with reference boxes in green and predicted boxes in red,
    each predicted box numbered in the order given (and captioned with ``texts`` when given)."""
    im = Image.fromarray(255 - page if ink_bright else page).convert("RGB")
    draw = ImageDraw.Draw(im)
    width = max(1, round(max(page.shape) / 600))
    for b in np.asarray(truth if truth is not None else [], dtype=np.float32).reshape(-1, 4):
        draw.rectangle([float(v) for v in b], outline=(0, 170, 0), width=width)
    for k, b in enumerate(np.asarray(predicted if predicted is not None else [], dtype=np.float32).reshape(-1, 4)):
        draw.rectangle([float(v) for v in b], outline=(220, 0, 0), width=width)
        label = f"{k + 1}" + (f" {texts[k]}" if texts is not None and k < len(texts) else "")
        draw.text((float(b[0]) + 2, float(b[1]) - 11 * width), label, fill=(220, 0, 0))
    return im
