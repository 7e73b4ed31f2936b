"""Evaluation of a recognizer on a line dataset: corpus-level CER/WER and decode throughput."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import torch
from torch.utils.data import DataLoader, Dataset

from ..config import LMConfig
from ..decoding import CTC_HEAD, GREEDY, JOINT, Decoding, as_decoding, uses_lm
from ..progress import progress_bar
from ..runtime import autocast, resolve_device, set_matmul_precision, sync
from .metrics import DocumentErrorCounts


@dataclass
class EvalResult:
    decoder: str
    cer: float
    wer: float
    lines: int
    chars: int
    seconds: float  # forward + decoding time, data loading excluded
    examples: list[dict] = field(default_factory=list)  # the first few (reference, hypothesis) pairs
    # document id -> [char_errors, ref_chars, word_errors, ref_words]; empty when the dataset names no documents
    documents: dict[str, list[int]] = field(default_factory=dict)

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {"decoder": self.decoder, "cer": self.cer, "wer": self.wer, "lines": self.lines,
                "chars": self.chars, "decode_seconds": round(self.seconds, 4),
                "decode_lines_per_s": round(self.lines_per_second, 2),
                **({"doc_errors": self.documents} if self.documents else {})}


# The most padded pixels one forward pass gets (32 lines of 64 x 4096): a batch of wide lines is read in slices
# of fewer lines. Lines are bounded one by one (ocrbench.data.samples.MAX_LINE_ASPECT); this bounds their batch.
# The shipped suites' batches stay far below it, so their numbers do not change.
MAX_BATCH_PIXELS = 32 * 64 * 4096


def pixel_budget_slices(shape: torch.Size, budget: int) -> list[slice]:
    """Slices of a ``(B, C, H, W)`` batch, each of at most ``budget`` pixels (one line at least)."""
    per_line = max(1, shape[1] * shape[2] * shape[3])
    step = max(1, budget // per_line)
    return [slice(i, i + step) for i in range(0, shape[0], step)]


@torch.no_grad()
def evaluate(model, dataset: Dataset, decoding: Decoding | str = GREEDY, batch_size: int = 32, device: str = "auto",
             precision: str = "fp32", num_examples: int = 5, progress: bool = False,
             max_batch_pixels: int = MAX_BATCH_PIXELS) -> EvalResult:
    """Transcribe every line of ``dataset`` with ``model.predict`` and ``decoding`` (a decoder's name: its default
    settings, without an LM) and score against the references; a batch over ``max_batch_pixels`` is read in
    slices of fewer lines."""
    decoding = as_decoding(decoding)
    model.check_decoder(decoding.name)
    dev = resolve_device(device)
    set_matmul_precision(dev, precision)  # "fp32" means no TF32, as in training and profiling
    model.to(dev).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        collate_fn=model.collate)
    counts, seconds, examples = DocumentErrorCounts(), 0.0, []
    documents = document_ids(dataset) or [None] * len(dataset)
    for batch in progress_bar(loader, progress, desc=f"eval {decoding.name}"):
        batch = batch.to(dev)
        t0 = time.perf_counter()
        hyps = []
        for part in pixel_budget_slices(batch.images.shape, max_batch_pixels):
            with autocast(dev, precision):
                hyps += model.predict(batch.images[part], batch.widths[part], decoding)
        sync(dev)
        seconds += time.perf_counter() - t0
        done = counts.total.lines  # the loader keeps dataset order: this batch is lines done .. done + len
        counts.update(hyps, batch.texts, documents[done:done + len(hyps)])
        examples += [{"ref": r, "hyp": h} for r, h in zip(batch.texts, hyps)][: num_examples - len(examples)]
    total = counts.total
    return EvalResult(decoding.name, total.cer, total.wer, total.lines, total.chars, seconds, examples,
                      counts.as_lists())


# sample_meta keys that name a line's document, preferred first (XML folders name the page image)
DOCUMENT_KEYS = ("document", "page")


def document_ids(dataset) -> list[str] | None:
    """The document of each line of ``dataset`` (its ``sample_meta``), or None if any line names none: counts
    per document over part of the corpus would give a bootstrap of another corpus than the CER's."""
    sample_meta = getattr(dataset, "sample_meta", None)
    if sample_meta is None:
        return None
    ids = []
    for i in range(len(dataset)):
        meta = sample_meta(i)
        doc = next((meta[k] for k in DOCUMENT_KEYS if meta.get(k) is not None), None)
        if doc is None:
            return None
        ids.append(str(doc))
    return ids


def make_decodings(model, names, lm_cfg: LMConfig, device: str = "auto", log=None) -> dict[str, Decoding]:
    """How ``model`` decodes with each of ``names``: the beam width of ``lm_cfg`` and, for a ``+lm`` decoder, its
    character LM (its checkpoint, or trained once and cached: :func:`ocrbench.lm.get_lm`, on ``device``) with
    the fusion weight, and for a CTC search (a model whose class declares ``lm_bonus_applies``, or a hybrid
    model's ``ctc+lm``) the CTC weight and the per-character bonus; a hybrid model's joint decoders, the CTC
    head's share of their score."""
    found = {name: Decoding(name, lm_cfg.beam_width) for name in names}
    found |= {name: replace(found[name], joint_weight=lm_cfg.joint_weight) for name in names if name in JOINT}
    fused = [name for name in found if uses_lm(name) and name in model.decoders]
    if fused:
        from ..lm import check_lm_charset, get_lm

        lm = get_lm(lm_cfg, model.charset.chars, device=device, log=log)
        check_lm_charset(lm, model.charset.chars)
    for name in fused:
        ctc = model.lm_bonus_applies or name in CTC_HEAD
        weight = lm_cfg.ctc_weight if ctc and lm_cfg.ctc_weight is not None else lm_cfg.weight
        found[name] = replace(found[name], lm=lm, lm_weight=weight, lm_bonus=lm_cfg.ctc_bonus if ctc else 0.0)
    return found


def decoding_fields(decoding: Decoding) -> dict:
    """What a result row records about ``decoding``: its settings, and the LM's checkpoint and scores."""
    if decoding.lm is None or not uses_lm(decoding.name):
        return decoding.record_fields()
    from ..lm import summary

    return {**decoding.record_fields(), **summary(decoding.lm)}
