"""How a recognizer's output becomes text: CTC greedy and prefix beam search (:mod:`.ctc`, :mod:`.ctc_beam`),
seq2seq greedy and beam search (:mod:`.beam`), each with optional shallow fusion of a character LM, and
:class:`Decoding`, the value that says which of them to run and with what settings.

Decoder names: ``greedy``, ``beam`` and ``beam+lm`` for every recognizer; a hybrid CTC/attention model (an
autoregressive one trained with an auxiliary CTC head) also has ``ctc`` and ``ctc+lm``, its CTC head read by
best path and by prefix beam search with the LM (the CTC fusion settings), as ESPnet's hybrid models can be,
and ``joint`` and ``joint+lm``: the attention decoder's beam search with the CTC head's prefix score added
(joint CTC/attention decoding, Watanabe et al. 2017; :mod:`.ctc_prefix`), with the LM as ``beam+lm`` has it.

A :class:`Decoding` is passed to ``predict`` (and to :func:`ocrbench.harness.evaluate.evaluate`); a model keeps
no decoding state. The harness builds it (:func:`ocrbench.harness.evaluate.make_decodings`), so the LM, its
weight and the beam width come from one place: the suite's ``lm:`` section.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import LMConfig
from .ctc import ctc_greedy_decode

CTC_HEAD = ("ctc", "ctc+lm")  # a hybrid model's auxiliary CTC head, read as a CTC model is (greedy, beam+lm)
JOINT = ("joint", "joint+lm")  # a hybrid model's attention beam search, rescored by its CTC head as it grows
BEST_PATH = ("greedy", "ctc")  # decoders with no settings: the most likely token at each step or frame


def uses_lm(decoder: str) -> bool:
    """Whether decoder ``decoder`` fuses a character LM (``beam+lm``, ``ctc+lm``, ``joint+lm``)."""
    return decoder.endswith("+lm")


def unknown_decoder(model: str, decoder: str, decoders: Sequence[str], where: str = "") -> str:
    """The one line for a decoder that model ``model`` lacks (``where``: the suite that asked, say): its
    decoders, and the closest name when one is close (a typo)."""
    close = difflib.get_close_matches(decoder, decoders, n=1, cutoff=0.5)
    hint = f" Did you mean: {close[0]}?" if close else ""
    return f"{model} has no decoder {decoder!r}{where}.{hint} Its decoders: {', '.join(decoders)}"


@dataclass(frozen=True)
class Decoding:
    """Which decoder (``"greedy"``, ``"beam"``, ``"beam+lm"``, or a hybrid model's ``"ctc"`` / ``"ctc+lm"``) and
    its settings. ``lm`` (a :class:`~ocrbench.lm.CharLM` over the model's charset) is used by the ``+lm``
    decoders only, with shallow-fusion weight ``lm_weight`` and a per-character ``lm_bonus`` (set only for CTC
    searches: models whose class declares ``lm_bonus_applies``, and ``ctc+lm``). ``joint_weight`` is the CTC
    head's share of the ``joint`` decoders' score. The LM is compared by identity and left out of the repr."""

    name: str = "greedy"
    beam_width: int = LMConfig.beam_width
    lm: Any = field(default=None, compare=False, repr=False)
    lm_weight: float = 0.0
    lm_bonus: float = 0.0
    joint_weight: float = LMConfig.joint_weight

    def fusion_lm(self, device) -> Any:
        """The LM on ``device``, for a ``+lm`` decoder; a clear error when there is none."""
        if self.lm is None:
            raise RuntimeError(f"decoder {self.name!r} needs a language model: pass Decoding({self.name!r}, lm=lm, "
                               "lm_weight=w) (`ocrbench lm train` trains one; the suite loads it from its lm: "
                               "section)")
        return self.lm.to(device).eval()

    def record_fields(self) -> dict:
        """The settings a result row records (the LM's own fields, its checkpoint and scores, are added by
        the harness): none for greedy, the beam width for beam, the fusion weights for the +lm decoders, and
        the CTC head's share for the joint ones."""
        if self.name in BEST_PATH:
            return {}
        fields = {"beam_width": self.beam_width}
        if uses_lm(self.name):
            fields |= {"lm_weight": self.lm_weight, "lm_bonus": self.lm_bonus}
        if self.name in JOINT:
            fields["joint_weight"] = self.joint_weight
        return fields


GREEDY = Decoding()


def as_decoding(decoding: Decoding | str) -> Decoding:
    """``decoding`` itself, or the default settings of the decoder it names (``predict(images, widths, "beam")``)."""
    return Decoding(decoding) if isinstance(decoding, str) else decoding


def ctc_decode(logits: torch.Tensor, lengths: torch.Tensor, decoding: Decoding) -> list[list[int]]:
    """Label ids of per-frame CTC ``logits`` (blank 0): best path for ``greedy`` / ``ctc``, prefix beam search
    (with the LM of a ``+lm`` decoding) otherwise. CTC models and hybrid models' CTC heads share it."""
    if decoding.name in BEST_PATH:
        return ctc_greedy_decode(logits, lengths)
    from .ctc_beam import ctc_prefix_beam_search

    lm = decoding.fusion_lm(logits.device) if uses_lm(decoding.name) else None
    return ctc_prefix_beam_search(logits.float().log_softmax(-1), lengths, decoding.beam_width, lm=lm,
                                  weight=decoding.lm_weight if lm else 0.0, bonus=decoding.lm_bonus if lm else 0.0)


__all__ = ["BEST_PATH", "CTC_HEAD", "GREEDY", "JOINT", "Decoding", "as_decoding", "ctc_decode", "ctc_greedy_decode", "unknown_decoder",
           "uses_lm"]
