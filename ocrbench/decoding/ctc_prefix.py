"""The CTC prefix score of label sequences, for joint CTC/attention beam search (Watanabe et al. 2017, "Hybrid
CTC/Attention Architecture for End-to-End Speech Recognition", section III-B): a hybrid model's attention
decoder proposes the next token, its CTC head says how likely the frames are to begin with the prefix so far.

For a prefix ``h`` over frames ``0..T-1`` the scorer keeps, per frame ``t``, the log-probabilities ``r_n[t]``
and ``r_b[t]`` that frames ``0..t`` collapse to exactly ``h`` and end in its last label or in a blank. For a
candidate label ``c`` and ``phi[t] = r_b[t] + (r_n[t] unless h ends in c)``, the recursions

    r_n'(t) = y_c(t) * (r_n'(t-1) + phi(t-1))        r_b'(t) = y_blank(t) * (r_b'(t-1) + r_n'(t-1))

are linear, so they are solved for all frames at once with cumulative sums in log space instead of a loop over
frames (``r_n'(t) = sum_s phi(s-1) prod_{u=s..t} y_c(u)``: a cumulative log-sum-exp over ``s``). The prefix score
of ``h + c`` is ``psi = sum_t phi(t-1) y_c(t)`` over the line's valid frames (``phi(-1) = 1`` for the empty
prefix), and the end of line scores ``r_n[T-1] + r_b[T-1]`` of ``h`` itself. A search adds the differences
``log psi(h + c) - log psi(h)``, which are never positive, so the sum over a hypothesis is its CTC prefix
log-probability. Everything is in float64: the cumulative sums span thousands of nats on long lines.
"""

from __future__ import annotations

import torch

NEG_INF = float("-inf")


def _shifted(x: torch.Tensor, first) -> torch.Tensor:
    """``x`` moved one frame later along the last dim, ``first`` in frame 0 (a number or a tensor of x[..., :1]'s shape)."""
    head = first if torch.is_tensor(first) else torch.full_like(x[..., :1], first)
    return torch.cat([head.expand_as(x[..., :1]), x[..., :-1]], -1)


class CTCPrefixScorer:
    """The CTC prefix scores of the hypotheses of a batched beam search (``K`` rows per line, line-major).

    Args:
        log_probs: ``(B, T, C)`` CTC log-probabilities per frame (blank 0; label ``c`` is token ``c`` for
            ``1 <= c < C``: the seq2seq token layout, see :mod:`ocrbench.models._seq2seq`).
        lengths: ``(B,)`` valid frames per line.
        rows_per_line: the beam width ``K``.
        eos: the end token (scored as the end of the frames); any other token outside ``1..C-1`` (padding of a
            finished hypothesis) scores 0.
    """

    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor, rows_per_line: int, eos: int):
        B, T, C = log_probs.shape
        self.eos, self.num_classes = eos, C
        self.y = log_probs.detach().double().transpose(1, 2)  # (B, C, T)
        self.line = torch.arange(B, device=log_probs.device).repeat_interleave(rows_per_line)  # row -> line
        lengths = lengths.to(log_probs.device).clamp(min=1, max=T).repeat_interleave(rows_per_line)
        self.last_frame = (lengths - 1)[:, None]  # (N, 1)
        self.valid = torch.arange(T, device=log_probs.device)[None, :] < lengths[:, None]  # (N, T)
        self.blank_cum = self.y[self.line, 0].cumsum(-1)  # (N, T): log prob of blanks in frames 0..t
        N = self.line.numel()
        self.r_n = torch.full((N, T), NEG_INF, dtype=torch.float64, device=log_probs.device)
        self.r_b = self.blank_cum.clone()  # the empty prefix: only blanks so far
        self.psi = torch.zeros(N, dtype=torch.float64, device=log_probs.device)
        self.last = torch.full((N,), -1, dtype=torch.long, device=log_probs.device)
        self.empty = torch.ones(N, dtype=torch.bool, device=log_probs.device)
        self._pending = None

    def score(self, candidates: torch.Tensor, finished: torch.Tensor) -> torch.Tensor:
        """``(N, P)`` CTC score increments ``log psi(h + c) - log psi(h)`` of each row's ``P`` candidate tokens
        (0 for the rows of finished hypotheses); :meth:`advance` then keeps the chosen ones."""
        labels = (candidates >= 1) & (candidates < self.num_classes)
        y = self.y[self.line[:, None], torch.where(labels, candidates, 0)]  # (N, P, T)
        both = torch.logaddexp(self.r_b, self.r_n)
        phi = torch.where((candidates == self.last[:, None])[..., None], self.r_b[:, None], both[:, None])
        start = torch.where(self.empty, 0.0, NEG_INF).to(phi)[:, None, None]
        phi_before = _shifted(phi, start)  # phi(t-1)
        y_cum = y.cumsum(-1)
        r_n = y_cum + torch.logcumsumexp(phi_before - _shifted(y_cum, 0.0), -1)
        blank_cum = self.blank_cum[:, None]
        r_b = blank_cum + torch.logcumsumexp(_shifted(r_n, NEG_INF) - _shifted(blank_cum, 0.0), -1)
        psi = (phi_before + y).masked_fill(~self.valid[:, None], NEG_INF).logsumexp(-1)
        end = both.gather(1, self.last_frame)  # (N, 1): the frames are exactly h
        psi = torch.where(candidates == self.eos, end, torch.where(labels, psi, self.psi[:, None]))
        self._pending = (candidates, labels, r_n, r_b, psi)
        delta = (psi - self.psi[:, None]).nan_to_num(nan=NEG_INF)  # an impossible prefix (-inf - -inf) stays so
        return delta.masked_fill(finished[:, None], 0.0).float()

    def advance(self, chosen: torch.Tensor) -> None:
        """Keep the candidates at flat indices ``chosen`` (``(N,)`` into the ``(N, P)`` of the last score) as the
        new rows, in order."""
        candidates, labels, r_n, r_b, psi = self._pending
        P = candidates.shape[1]
        parent, flat = chosen // P, chosen
        label = labels.view(-1)[flat]
        self.r_n = torch.where(label[:, None], r_n.flatten(0, 1)[flat], self.r_n[parent])
        self.r_b = torch.where(label[:, None], r_b.flatten(0, 1)[flat], self.r_b[parent])
        self.psi = psi.view(-1)[flat]
        self.last = torch.where(label, candidates.view(-1)[flat], self.last[parent])
        self.empty = self.empty[parent] & ~label
        self._pending = None
