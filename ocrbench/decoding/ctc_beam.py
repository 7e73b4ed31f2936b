"""CTC prefix beam search (Hannun et al. 2014, "First-Pass Large Vocabulary Continuous Speech Recognition
using Bi-Directional Recurrent DNNs") with optional shallow fusion of a character LM.

A hypothesis is a label prefix carrying two probabilities: of the frames so far ending in a blank (``pb``)
and in its last label (``pnb``); paths that collapse to the same prefix are summed. Its ranking score is

    log(pb + pnb) + weight * log p_LM(prefix) + bonus * len(prefix)

and the final ranking adds ``weight * log p_LM(end of line | prefix)``. With ``weight = bonus = 0`` the
scores, and so the result, are exactly those of the plain search.

Cost: the prefix bookkeeping is Python, but only over labels worth extending (the ``top_k`` best of a frame
above ``prune`` log-probability; a trained CTC model puts almost all mass on blank in most frames), and the
LM runs once per frame for the whole batch on the prefixes that are new.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

NEG_INF = float("-inf")


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


@dataclass
class _Hyp:
    pb: float = NEG_INF  # log P(frames so far, ending in blank)
    pnb: float = NEG_INF  # log P(frames so far, ending in the last label)
    lm: float = 0.0  # log p_LM(prefix)
    lm_next: list | None = None  # log p_LM(next token | prefix); None until the prefix's LM state is computed
    lm_row: int = -1  # the prefix's row in the LM state batch (when lm_next is known)
    parent_row: int = -1  # a new prefix: its parent's row, from which the LM continues with the last label

    @property
    def ctc(self) -> float:
        return _logaddexp(self.pb, self.pnb)


class _LMStates:
    """The LM states of the live prefixes of every line, as rows of one state batch."""

    def __init__(self, lm, device):
        self.lm = lm
        logp, self.state = lm.start(1, device)
        self.first = logp[0].tolist()

    def advance(self, beams: list[dict[tuple, _Hyp]]) -> None:
        """Give every new prefix (``lm_next`` unknown) its LM state, in one batched step for all lines, and
        rebuild the state batch with only the live prefixes."""
        new = [(prefix, h) for line in beams for prefix, h in line.items() if h.lm_next is None]
        if not new:
            return
        old = [h for line in beams for h in line.values() if h.lm_next is not None]
        device = self.state[0].device
        rows = lambda r: torch.tensor(r, dtype=torch.long, device=device)  # noqa: E731
        tokens = rows([prefix[-1] for prefix, _ in new])
        logp, grown = self.lm.step(tokens, self.lm.select(self.state, rows([h.parent_row for _, h in new])))
        kept = self.lm.select(self.state, rows([h.lm_row for h in old]))
        self.state = self.lm.concat([kept, grown])
        for i, h in enumerate(old):
            h.lm_row = i
        for i, ((_, h), next_lp) in enumerate(zip(new, logp.cpu().tolist())):
            h.lm_next, h.lm_row = next_lp, len(old) + i


def _candidates(log_probs: torch.Tensor, top_k: int, prune: float) -> list[list[list[tuple[int, float]]]]:
    """Per line and frame, the labels (not blank) worth extending with: the ``top_k`` best above ``prune``."""
    k = min(top_k, log_probs.shape[-1] - 1)
    values, labels = log_probs[..., 1:].topk(k, dim=-1)
    values, labels = values.cpu().numpy(), (labels + 1).cpu().numpy()
    keep = values > prune
    return [[list(zip(labels[b, t][keep[b, t]].tolist(), values[b, t][keep[b, t]].tolist()))
             for t in range(values.shape[1])] for b in range(values.shape[0])]


def ctc_prefix_beam_search(log_probs: torch.Tensor, lengths: torch.Tensor, beam_width: int = 5, lm=None,
                           weight: float = 0.0, bonus: float = 0.0, top_k: int | None = None,
                           prune: float = -12.0, blank: int = 0, return_scores: bool = False):
    """Decode a batch of CTC outputs.

    Args:
        log_probs: ``(B, T, C)`` per-frame log-probabilities (log-softmax), blank at index ``blank`` = 0.
        lengths: ``(B,)`` valid frames per line.
        beam_width: prefixes kept after each frame.
        lm: a :class:`~ocrbench.lm.CharLM` whose token ``c`` is CTC class ``c`` (1..N), or None.
        weight: LM weight λ (0 with an LM gives exactly the plain search's result and scores).
        bonus: score added per emitted label.
        top_k, prune: labels considered per frame (default ``beam_width``) and their log-probability floor.
    Returns:
        One list of class indices per line (and, with ``return_scores``, the final score of each).
    """
    if blank != 0:
        raise ValueError("ctc_prefix_beam_search expects the blank at index 0")
    log_probs = log_probs.float()
    lp = log_probs.cpu().numpy()
    cands = _candidates(log_probs, top_k or beam_width, prune)
    lengths = lengths.cpu().tolist()
    B = lp.shape[0]
    lm_states = _LMStates(lm, log_probs.device) if lm is not None else None
    root = _Hyp(pb=0.0, lm_next=lm_states.first if lm is not None else None, lm_row=0)
    beams: list[dict[tuple, _Hyp]] = [{(): root} for _ in range(B)]
    for t in range(max(lengths, default=0)):
        for b in range(B):
            if t < lengths[b]:
                beams[b] = _step(beams[b], lp[b, t], cands[b][t], beam_width, lm is not None, weight, bonus)
        if lm_states is not None:
            lm_states.advance(beams)
    out, scores = [], []
    for b in range(B):
        def final(item):
            prefix, h = item
            end = weight * h.lm_next[lm.eos] if lm is not None else 0.0
            return h.ctc + weight * h.lm + end + bonus * len(prefix)

        prefix, h = max(beams[b].items(), key=final)
        out.append(list(prefix))
        scores.append(final((prefix, h)))
    return (out, scores) if return_scores else out


def _step(beams: dict, lp: np.ndarray, cands: list[tuple[int, float]], beam_width: int, use_lm: bool,
          weight: float, bonus: float) -> dict:
    """One frame: extend every prefix by blank, a repeat of its last label, or a candidate label."""
    blank_lp = float(lp[0])
    nxt: dict[tuple, _Hyp] = {}
    for prefix, h in beams.items():
        total = h.ctc
        stay = nxt.get(prefix)
        if stay is None:
            stay = nxt[prefix] = _Hyp(lm=h.lm)
        stay.lm_next, stay.lm_row = h.lm_next, h.lm_row  # may have been created as a new extension: it is not
        stay.pb = _logaddexp(stay.pb, total + blank_lp)
        last = prefix[-1] if prefix else None
        if last is not None:  # the last label again, no blank between: the same prefix
            stay.pnb = _logaddexp(stay.pnb, h.pnb + float(lp[last]))
        for c, c_lp in cands:
            new = prefix + (c,)
            ext = nxt.get(new)
            if ext is None:
                lm_score = h.lm + h.lm_next[c] if use_lm else 0.0
                ext = nxt[new] = _Hyp(lm=lm_score, parent_row=h.lm_row)
            # a repeated label needs a blank between: only the paths ending in blank extend
            ext.pnb = _logaddexp(ext.pnb, (h.pb if c == last else total) + c_lp)
    if len(nxt) <= beam_width:
        return nxt
    ranked = sorted(nxt.items(), key=lambda kv: kv[1].ctc + weight * kv[1].lm + bonus * len(kv[0]), reverse=True)
    return dict(ranked[:beam_width])
