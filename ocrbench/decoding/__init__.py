"""How a recognizer's output becomes text: CTC greedy and prefix beam search (:mod:`.ctc`, :mod:`.ctc_beam`),
seq2seq greedy and beam search (:mod:`.beam`), each with optional shallow fusion of a character LM, and
:class:`Decoding`, the value that says which of them to run and with what settings.

A :class:`Decoding` is passed to ``predict`` (and to :func:`ocrbench.harness.evaluate.evaluate`); a model keeps
no decoding state. The harness builds it (:func:`ocrbench.harness.evaluate.make_decodings`), so the LM, its
weight and the beam width come from one place: the suite's ``lm:`` section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import LMConfig
from .ctc import ctc_greedy_decode


@dataclass(frozen=True)
class Decoding:
    """Which decoder (``"greedy"``, ``"beam"`` or ``"beam+lm"``) and its settings. ``lm`` (a
    :class:`~ocrbench.lm.CharLM` over the model's charset) is used by ``"beam+lm"`` only, with shallow-fusion
    weight ``lm_weight`` and a per-character ``lm_bonus`` (set only for models whose class declares
    ``lm_bonus_applies``). The LM is compared by identity and left out of the repr."""

    name: str = "greedy"
    beam_width: int = LMConfig.beam_width
    lm: Any = field(default=None, compare=False, repr=False)
    lm_weight: float = 0.0
    lm_bonus: float = 0.0

    def fusion_lm(self, device) -> Any:
        """The LM on ``device``, for decoder "beam+lm"; a clear error when there is none."""
        if self.lm is None:
            raise RuntimeError("decoder 'beam+lm' needs a language model: pass Decoding('beam+lm', lm=lm, "
                               "lm_weight=w) (`ocrbench lm train` trains one; the suite loads it from its lm: "
                               "section)")
        return self.lm.to(device).eval()

    def record_fields(self) -> dict:
        """The settings a result row records (the LM's own fields, its checkpoint and scores, are added by
        the harness): none for greedy, the beam width for beam, and the fusion weights for beam+lm."""
        if self.name == "greedy":
            return {}
        if self.name == "beam":
            return {"beam_width": self.beam_width}
        return {"beam_width": self.beam_width, "lm_weight": self.lm_weight, "lm_bonus": self.lm_bonus}


GREEDY = Decoding()


def as_decoding(decoding: Decoding | str) -> Decoding:
    """``decoding`` itself, or the default settings of the decoder it names (``predict(images, widths, "beam")``)."""
    return Decoding(decoding) if isinstance(decoding, str) else decoding


__all__ = ["GREEDY", "Decoding", "as_decoding", "ctc_greedy_decode"]
