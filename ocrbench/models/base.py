"""The contract between the harness and a model.

The harness (train, evaluate, profile) calls only what is defined here. A recognizer is an ``nn.Module`` with:

- ``info``: a :class:`ModelInfo` (input height, width stride, decoder kind, paper);
- ``loss(batch) -> Tensor``: mean training loss of a :class:`~ocrbench.data.base.LineBatch`;
- ``predict(images, widths, decoder="greedy") -> list[str]``: transcriptions;
- ``decoders``: the decoder names ``predict`` accepts;
- ``min_input_width(target_length)``: narrowest image that can carry a label of that length;
- ``set_grad_checkpointing(enable)``: recompute activations of the main stages in backward.

A mode a model does not support raises ``NotImplementedError`` and shows as ``n/a`` in reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.base import LineBatch
from ..data.charset import Charset
from ..decoding.ctc import ctc_greedy_decode
from ..decoding.ctc_beam import ctc_prefix_beam_search


@dataclass(frozen=True)
class ModelInfo:
    """Metadata beside the model, apart from its constructor arguments (timm's pretrained_cfg)."""

    input_height: int
    output_stride: int  # image columns per output frame (CTC); the encoder's width stride otherwise
    min_width: int  # narrowest input the network accepts (its receptive field)
    decoder: str  # "ctc", "attention" or "detector"
    paper: str = ""


class Recognizer(nn.Module):
    """Base class of every line recognizer."""

    task = "recognition"
    decoders: tuple[str, ...] = ("greedy",)

    def __init__(self, charset: Charset, info: ModelInfo):
        super().__init__()
        self.charset = charset
        self.info = info
        self.grad_checkpointing = False
        self.name = type(self).__name__

    def loss(self, batch: LineBatch) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: torch.Tensor, widths: torch.Tensor, decoder: str = "greedy") -> list[str]:
        raise NotImplementedError

    def min_input_width(self, target_length: int) -> int:
        return self.info.min_width

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def check_decoder(self, decoder: str) -> None:
        if decoder not in self.decoders:
            raise NotImplementedError(f"{self.name} has no decoder {decoder!r} (has: {', '.join(self.decoders)})")

    # ---- beam search settings and the language model of "beam+lm" (set by the harness, not saved) ----
    beam_width: int = 5
    lm_weight: float = 0.0
    lm_bonus: float = 0.0

    def attach_lm(self, lm, weight: float, beam_width: int | None = None, bonus: float = 0.0) -> None:
        """Use ``lm`` (a :class:`~ocrbench.lm.CharLM` over this model's charset) with shallow-fusion weight
        ``weight`` in decoder "beam+lm". The LM is kept outside the module tree: it is neither saved in the
        model's checkpoint nor counted in its parameters. ``lm=None`` detaches."""
        if lm is not None:
            from ..lm import check_lm_charset

            check_lm_charset(lm, self.charset.chars)
        self.__dict__["_lm"] = lm
        self.lm_weight, self.lm_bonus = float(weight), float(bonus)
        if beam_width is not None:
            self.beam_width = int(beam_width)

    def fusion_lm(self, device: torch.device):
        """The attached LM on ``device`` for decoder "beam+lm"; a clear error when none is attached."""
        lm = self.__dict__.get("_lm")
        if lm is None:
            raise RuntimeError("decoder 'beam+lm' needs a language model: call model.attach_lm(lm, weight) first "
                               "(`ocrbench lm train` trains one; the suite attaches it from its lm: section)")
        return lm.to(device).eval()


class CTCRecognizer(Recognizer):
    """A recognizer whose ``forward(images, widths)`` returns per-frame logits ``(B, T, num_classes)``
    trained with CTC (blank = 0). Subclasses implement ``forward`` and ``output_lengths``.
    Decoders: best path, prefix beam search, and prefix beam search with the attached character LM."""

    decoders = ("greedy", "beam", "beam+lm")

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_batch(self, batch: LineBatch) -> torch.Tensor:
        """The logits of a training batch: ``self(images, widths)``. A model whose forward needs lengths on the
        host (packing) overrides this to use the batch's CPU widths (``batch.lengths_on_host(copy=False)``)."""
        return self(batch.images, batch.widths)

    def min_input_width(self, target_length: int) -> int:
        # CTC needs a frame per character plus one blank between repeated characters: 2L frames always suffice.
        return max(self.info.min_width, (2 * target_length + 1) * self.info.output_stride)

    def loss(self, batch: LineBatch) -> torch.Tensor:
        logits = self.forward_batch(batch)
        # lengths on the host, from the batch's CPU copies: F.ctc_loss copies its length arguments to the host
        # anyway, and the check below then needs no device→host copy (a sync per training step)
        widths, target_lengths = batch.lengths_on_host()
        lengths = self.output_lengths(widths).clamp(max=logits.shape[1])
        too_long = target_lengths > lengths
        if too_long.any():
            i = int(too_long.nonzero()[0])
            raise ValueError(
                f"label of {int(target_lengths[i])} characters is longer than the {int(lengths[i])} CTC "
                f"frames of its image (width {int(widths[i])}); pad images to model.min_input_width()")
        # CTC in float32 even under autocast: its log-space sums underflow in half precision.
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)
        return F.ctc_loss(log_probs, batch.targets, lengths, target_lengths,
                          blank=0, reduction="mean", zero_infinity=True)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, widths: torch.Tensor, decoder: str = "greedy") -> list[str]:
        self.check_decoder(decoder)
        logits = self(images, widths)
        lengths = self.output_lengths(widths).clamp(max=logits.shape[1])
        if decoder == "greedy":
            ids = ctc_greedy_decode(logits, lengths)
        else:
            lm = self.fusion_lm(logits.device) if decoder == "beam+lm" else None
            ids = ctc_prefix_beam_search(logits.float().log_softmax(-1), lengths, self.beam_width, lm=lm,
                                         weight=self.lm_weight if lm else 0.0, bonus=self.lm_bonus if lm else 0.0)
        return [self.charset.decode(i) for i in ids]
