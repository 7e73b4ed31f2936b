"""Base class of autoregressive (encoder-decoder) recognizers: tokens, teacher-forcing loss, decoding.

Tokens: 0 = padding (never predicted), ``1..N`` the charset's characters (the same indices as CTC models),
``N + 1`` = start, ``N + 2`` = end; the output layer has ``N + 3`` classes. The character LM uses the same
layout, so shallow fusion adds scores column by column.

A subclass implements

- ``encode(images, widths) -> memory``: a dict of tensors with rows in dim 0; it must hold ``"features"``
  ``(B, T, D)`` and ``"lengths"`` ``(B,)`` (valid frames), used by the optional CTC head and the length limit;
  optionally ``"host_lengths"``, the same on the CPU (the CTC loss then copies nothing to the host). An encoder
  that can use the batch's CPU widths (``LineBatch.host_widths``: packing without a device→host copy)
  overrides ``encode_batch(batch)``, which the loss calls;
- ``teacher_forcing(memory, inputs) -> logits``: ``(B, L, num_tokens)`` for inputs ``[start, y_1 .. y_L-1]``;
- ``init_state(memory) -> state`` and ``decode_step(tokens, state, memory) -> (logits, state)``: one step of
  the decoder (see :mod:`ocrbench.decoding.beam`).

The profiler counts and times these models per decoded line: :class:`TeacherForcedPass` (a training step's
forward) and :class:`GreedyDecodePass` (a fixed number of greedy steps, whatever the tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.charset import Charset
from ..data.samples import LineBatch
from ..decoding import CTC_HEAD, GREEDY, JOINT, Decoding, as_decoding, ctc_decode, uses_lm
from ..decoding.beam import beam_search, greedy_search
from ._base import FlopsPasses, ModelInfo, Recognizer, rows_per_class


class Seq2SeqRecognizer(Recognizer):
    """Recognizer with an autoregressive decoder; decoders: greedy, beam, beam+lm, and with an auxiliary CTC head
    also ctc and ctc+lm (the head read as a CTC model is: best path, prefix beam search with the LM), and joint
    and joint+lm (the beam search scored by both the decoder and the head).

    Args:
        label_smoothing: share of the target probability spread uniformly over the other valid tokens
            (characters and end), Szegedy et al. 2016; 0 disables it.
        ctc_weight: weight of an auxiliary CTC loss on the encoder features (hybrid CTC/attention training,
            Watanabe et al. 2017). It shapes training (the encoder learns a monotonic alignment sooner), and
            the head can be read on its own (decoders ctc, ctc+lm). 0 disables it.
        max_length: most characters decoded per line (also limited to the encoder frames + 8).
    """

    @property
    def decoders(self) -> tuple[str, ...]:
        return ("greedy", "beam", "beam+lm", *(CTC_HEAD + JOINT if self.ctc_head is not None else ()))

    @property
    def max_output_length(self) -> int:
        return self.max_length

    def __init__(self, charset: Charset, info: ModelInfo, label_smoothing: float = 0.1, ctc_weight: float = 0.0,
                 max_length: int = 200):
        super().__init__(charset, info)
        self.bos, self.eos, self.num_tokens = len(charset) + 1, len(charset) + 2, len(charset) + 3
        self.label_smoothing, self.ctc_weight, self.max_length = label_smoothing, ctc_weight, max_length
        never = torch.zeros(self.num_tokens, dtype=torch.bool)
        never[[0, self.bos]] = True  # padding and start are inputs only
        self.register_buffer("never", never, persistent=False)
        self.ctc_head: nn.Module | None = None

    def add_ctc_head(self, features: int) -> None:
        """Called by subclasses after building the encoder (a linear layer: frames → CTC classes)."""
        if self.ctc_weight > 0:
            self.ctc_head = nn.Linear(features, self.charset.num_classes)

    # ---- to implement ----
    def encode(self, images: torch.Tensor, widths: torch.Tensor) -> dict:
        raise NotImplementedError

    def teacher_forcing(self, memory: dict, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def init_state(self, memory: dict) -> dict:
        raise NotImplementedError

    def decode_step(self, tokens: torch.Tensor, state: dict, memory: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def encode_batch(self, batch: LineBatch) -> dict:
        """``encode`` of a training batch (see the module docstring)."""
        return self.encode(batch.images, batch.widths)

    # ---- shared ----
    def class_labels(self) -> list[str]:
        # an auxiliary CTC head's rows are the first N + 1 of these: its blank shares index 0 with padding
        return ["<pad>", *self.charset.chars, "<sos>", "<eos>"]

    def class_parameters(self) -> dict[str, int]:
        """The token ``embedding``, the output ``head`` and the optional ``ctc_head`` (the reference models'
        names; a model with other charset-sized layers overrides this)."""
        return rows_per_class(self, ["embedding", "head", "ctc_head"])

    def min_input_width(self, target_length: int) -> int:
        if self.ctc_head is not None:
            # the auxiliary CTC loss needs a frame per character (and one per repeated pair, rarely binding;
            # an infeasible line just adds nothing, zero_infinity): narrow images are padded
            return max(self.info.min_width, (target_length + 1) * self.info.output_stride)
        return self.info.min_width

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Float32 log-probabilities with padding and start masked out."""
        return logits.float().masked_fill(self.never, float("-inf")).log_softmax(-1)

    def step_log_probs(self, tokens: torch.Tensor, state: dict, memory: dict) -> tuple[torch.Tensor, dict]:
        logits, state = self.decode_step(tokens, state, memory)
        return self.log_probs(logits), state

    def loss(self, batch: LineBatch) -> torch.Tensor:
        memory = self.encode_batch(batch)
        targets = batch.targets.clone()
        B = targets.shape[0]
        targets = torch.cat([targets, targets.new_zeros(B, 1)], 1)
        targets[torch.arange(B, device=targets.device), batch.target_lengths] = self.eos
        inputs = torch.cat([targets.new_full((B, 1), self.bos), targets[:, :-1]], 1)
        inputs = inputs.masked_fill(inputs == self.eos, 0)
        logp = self.log_probs(self.teacher_forcing(memory, inputs))
        loss = self._smoothed_nll(logp, targets)
        if self.ctc_head is not None:
            loss = (1 - self.ctc_weight) * loss + self.ctc_weight * self._ctc_loss(memory, batch)
        return loss

    def _smoothed_nll(self, logp: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean over target tokens of the label-smoothed negative log-likelihood; smoothing mass goes to the
        valid tokens only (F.cross_entropy's would also go to the masked ones, at -inf)."""
        valid = targets != 0
        nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        if self.label_smoothing:
            uniform = -logp.masked_fill(self.never, 0.0).sum(-1) / (self.num_tokens - 2)
            nll = (1 - self.label_smoothing) * nll + self.label_smoothing * uniform
        return nll.masked_fill(~valid, 0.0).sum() / valid.sum()  # masked_fill: padding's nll is inf

    def _ctc_loss(self, memory: dict, batch: LineBatch) -> torch.Tensor:
        log_probs = self.ctc_head(memory["features"]).float().log_softmax(-1).transpose(0, 1)
        # lengths on the host where the encoder kept them: F.ctc_loss copies its length arguments to the host
        lengths = memory.get("host_lengths", memory["lengths"]).clamp(max=log_probs.shape[0])
        _, target_lengths = batch.lengths_on_host()
        return F.ctc_loss(log_probs, batch.targets, lengths, target_lengths, blank=0, reduction="mean",
                          zero_infinity=True)

    def greedy_steps(self, images: torch.Tensor, widths: torch.Tensor, steps: int) -> torch.Tensor:
        """Exactly ``steps`` greedy decoder steps, end token or not: ``(B, steps)`` tokens."""
        memory = self.encode(images, widths)
        state = self.init_state(memory)
        tokens = torch.full((images.shape[0],), self.bos, dtype=torch.long, device=images.device)
        out = []
        for _ in range(steps):
            logits, state = self.decode_step(tokens, state, memory)
            tokens = logits.argmax(-1)
            out.append(tokens)
        return torch.stack(out, 1)

    def flops_passes(self, images: torch.Tensor, widths: torch.Tensor, target_length: int) -> FlopsPasses:
        return {"train": (TeacherForcedPass(self, target_length), (images, widths)),
                "infer": (GreedyDecodePass(self, target_length), (images, widths))}

    def profile_predict(self, images: torch.Tensor, widths: torch.Tensor, target_length: int) -> torch.Tensor:
        # an untrained model stops whenever it happens to emit the end token: decode exactly the line length
        return self.greedy_steps(images, widths, target_length + 1)

    def forward_features(self, images: torch.Tensor, widths: torch.Tensor) -> dict:
        return self.encode(images, widths)  # the encoder holds the feature maps

    def decode_limits(self, memory: dict) -> torch.Tensor:
        """Most characters per line: never more than the encoder frames (+ slack), never over max_length."""
        return (memory["lengths"] + 8).clamp(max=self.max_length)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, widths: torch.Tensor, decoding: Decoding | str = GREEDY) -> list[str]:
        decoding = as_decoding(decoding)
        self.check_decoder(decoding.name)
        memory = self.encode(images, widths)
        if decoding.name in CTC_HEAD:
            logits = self.ctc_head(memory["features"])
            ids = ctc_decode(logits, memory["lengths"].clamp(max=logits.shape[1]), decoding)
            return [self.charset.decode(i) for i in ids]
        limits = self.decode_limits(memory)
        state = self.init_state(memory)
        if decoding.name == "greedy":
            ids = greedy_search(self.step_log_probs, state, memory, self.bos, self.eos, limits)
        else:
            lm = decoding.fusion_lm(images.device) if uses_lm(decoding.name) else None
            ids = beam_search(self.step_log_probs, state, memory, self.bos, self.eos, limits, decoding.beam_width,
                              lm=lm, weight=decoding.lm_weight if lm else 0.0,
                              bonus=decoding.lm_bonus if lm else 0.0, ctc=self._ctc_frames(memory, decoding),
                              ctc_weight=decoding.joint_weight)
        return [self.charset.decode(i) for i in ids]

    def _ctc_frames(self, memory: dict, decoding: Decoding) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The CTC head's log-probabilities and valid frames, for a joint decoder; None for the others."""
        if decoding.name not in JOINT:
            return None
        log_probs = self.ctc_head(memory["features"]).float().log_softmax(-1)
        return log_probs, memory["lengths"].clamp(max=log_probs.shape[1])


class TeacherForcedPass(nn.Module):
    """What an autoregressive model's training step runs forward: the encoder, then the decoder over
    ``length + 1`` teacher-forced positions (``[start, y_1 .. y_L]`` predicting ``[y_1 .. y_L, end]``)."""

    def __init__(self, model: Seq2SeqRecognizer, length: int):
        super().__init__()
        self.model, self.length = model, length

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        memory = self.model.encode(images, widths)
        inputs = torch.ones(images.shape[0], self.length + 1, dtype=torch.long, device=images.device)
        inputs[:, 0] = self.model.bos
        return self.model.teacher_forcing(memory, inputs)


class GreedyDecodePass(nn.Module):
    """What transcribing runs: the encoder, then ``length + 1`` greedy decoder steps (``length`` characters
    and the end token) whatever the tokens are, so the cost is that of a line of ``length`` characters and
    does not depend on when an untrained model happens to emit the end token."""

    def __init__(self, model: Seq2SeqRecognizer, length: int):
        super().__init__()
        self.model, self.length = model, length

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        return self.model.greedy_steps(images, widths, self.length + 1)
