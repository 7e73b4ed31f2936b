"""Autoregressive decoding of sequence-to-sequence recognizers: batched greedy and beam search, with a
length limit and optional shallow fusion of a character LM (Gulcehre et al. 2015, "On Using Monolingual
Corpora in Neural Machine Translation").

A model exposes one decoder step, ``step(tokens, state, memory) -> (log_probs, state)``: ``tokens`` are the
``(N,)`` previous tokens, ``state`` what changes from step to step (LSTM state, key/value cache) and
``memory`` what does not (encoder output). Both are dicts of tensors whose first dimension is the row;
beam search expands them to ``beam_width`` rows per line once and then reorders only ``state``.

Beam search is fully batched: every line keeps ``beam_width`` hypotheses as rows of one tensor, the next
ones are the top-k of ``score + log p(token)`` over all (hypothesis, token) pairs. A hypothesis that emits
the end token is finished: it stays in the beam with its score frozen (its only continuation is padding at
log-probability 0), so finished and live hypotheses compete directly. The score is

    sum_t log p_model(y_t | y_<t, x) + weight * log p_LM(y_t | y_<t) + bonus * [y_t is a character]

with no length normalisation; with ``weight = bonus = 0`` it is exactly the plain search (same tokens, same
scores). Each line stops at its ``max_lengths`` entry: there, only the end token is allowed.

Joint CTC/attention search (a hybrid model's ``joint`` decoders; Watanabe et al. 2017) weighs the model's term by
``1 - ctc_weight`` and adds ``ctc_weight`` times the CTC prefix score of the hypothesis (:mod:`.ctc_prefix`).
As in ESPnet, the CTC score is computed only for each hypothesis's ``ceil(1.5 * beam_width)`` best tokens by
the other terms (a pre-beam): scoring every token would cost the vocabulary size times more.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .ctc_prefix import CTCPrefixScorer

Tree = dict  # name -> tensor with rows in dim 0 (other values are passed through)
StepFn = Callable[[torch.Tensor, Tree, Tree], tuple[torch.Tensor, Tree]]


def select_rows(tree: Tree, rows: torch.Tensor) -> Tree:
    return {k: v.index_select(0, rows) if torch.is_tensor(v) else v for k, v in tree.items()}


def expand_rows(tree: Tree, times: int) -> Tree:
    """Each row repeated ``times`` times in place (row r becomes rows r*times .. r*times + times - 1)."""
    return {k: v.repeat_interleave(times, dim=0) if torch.is_tensor(v) else v for k, v in tree.items()}


def strip(tokens: list[int], eos: int) -> list[int]:
    """Tokens up to (without) the first end token, padding dropped."""
    out = []
    for t in tokens:
        if t == eos:
            break
        if t:
            out.append(t)
    return out


@torch.no_grad()
def greedy_search(step: StepFn, state: Tree, memory: Tree, bos: int, eos: int, max_lengths: torch.Tensor,
                  stop_at_eos: bool = True) -> list[list[int]]:
    """Most likely token at every step, for a batch of lines; ``max_lengths`` ``(B,)`` caps each line.
    ``stop_at_eos=False`` always runs ``max_lengths.max()`` steps (timing benchmarks)."""
    device = max_lengths.device
    tokens = torch.full((max_lengths.numel(),), bos, dtype=torch.long, device=device)
    finished = torch.zeros_like(tokens, dtype=torch.bool)
    out = []
    for t in range(int(max_lengths.max()) + 1):
        logp, state = step(tokens, state, memory)
        tokens = logp.argmax(-1)
        tokens = torch.where(t >= max_lengths, torch.full_like(tokens, eos), tokens)
        tokens = tokens.masked_fill(finished, 0)
        out.append(tokens)
        finished = finished | (tokens == eos)
        if stop_at_eos and bool(finished.all()):
            break
    rows = torch.stack(out, 1).cpu().tolist()
    return [strip(r, eos) for r in rows]


@torch.no_grad()
def beam_search(step: StepFn, state: Tree, memory: Tree, bos: int, eos: int, max_lengths: torch.Tensor,
                beam_width: int = 5, lm=None, weight: float = 0.0, bonus: float = 0.0,
                ctc: tuple[torch.Tensor, torch.Tensor] | None = None, ctc_weight: float = 0.0,
                return_scores: bool = False):
    """Batched beam search (see the module docstring).

    Args:
        step, state, memory: the model's decoder step and its initial state / encoder memory, ``B`` rows.
        bos, eos: start and end tokens; token 0 is padding and never predicted.
        max_lengths: ``(B,)`` most tokens per line before the end token.
        beam_width: hypotheses kept per line.
        lm: a :class:`~ocrbench.lm.CharLM` over the same token indices, or None; ``weight`` is its λ.
        bonus: added per character token (not the end token).
        ctc: ``(log_probs, lengths)`` of a CTC head over the same lines (``(B, T, C)``, ``(B,)``; label ``c`` is
            token ``c``), for joint CTC/attention search with weight ``ctc_weight``; None: attention only.
    Returns:
        The best token list per line (and, with ``return_scores``, a ``(B,)`` tensor of their scores).
    """
    B, K, device = max_lengths.numel(), beam_width, max_lengths.device
    N = B * K
    state, memory = expand_rows(state, K), expand_rows(memory, K)
    limit = max_lengths.repeat_interleave(K)
    tokens = torch.full((N,), bos, dtype=torch.long, device=device)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis at the start, so the beam does not fill with copies of it
    finished = torch.zeros(N, dtype=torch.bool, device=device)
    history = torch.zeros(N, 0, dtype=torch.long, device=device)
    lm_logp, lm_state = lm.start(N, device) if lm is not None else (None, None)
    scorer = CTCPrefixScorer(*ctc, K, eos) if ctc is not None else None
    pre_beam = math.ceil(1.5 * K)
    monotone = weight >= 0 and bonus <= 0  # scores never grow: a finished best hypothesis is final
    for t in range(int(max_lengths.max()) + 1):
        logp, state = step(tokens, state, memory)
        logp = logp.float()
        V = logp.shape[-1]
        if scorer is not None:
            logp = (1 - ctc_weight) * logp
        if lm is not None:
            logp = logp + weight * lm_logp
        if bonus:
            is_char = torch.ones(V, dtype=torch.bool, device=device)
            is_char[eos] = False
            logp = logp + bonus * is_char
        logp = _only_end_at_limit(logp, t >= limit, eos)
        logp = _frozen_if_finished(logp, finished)
        if scorer is None:
            top, idx = (scores.view(N, 1) + logp).view(B, K * V).topk(K, dim=1)
            rows = (torch.arange(B, device=device)[:, None] * K + idx // V).view(N)
            tokens = (idx % V).view(N)
        else:
            rows, tokens, top = _joint_step(scorer, scores, logp, finished, min(pre_beam, V), ctc_weight)
        scores = top
        finished = finished[rows] | (tokens == eos) | (top.view(N) == float("-inf"))
        history = torch.cat([history[rows], tokens[:, None]], 1)
        state = select_rows(state, rows)
        if lm is not None:
            lm_logp, lm_state = lm.step(tokens, lm.select(lm_state, rows))
        if bool(finished.all()) or (monotone and bool(finished.view(B, K)[:, 0].all())):
            break
    best = history.view(B, K, -1)[:, 0].cpu().tolist()
    hyps = [strip(r, eos) for r in best]
    return (hyps, scores[:, 0]) if return_scores else hyps


def _joint_step(scorer: CTCPrefixScorer, scores: torch.Tensor, logp: torch.Tensor, finished: torch.Tensor,
                pre_beam: int, ctc_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of the joint search: each row's ``pre_beam`` best tokens by ``logp``, rescored with the CTC
    prefix score, and the ``K`` best (row, token) pairs of each line; the scorer keeps their CTC states."""
    B, K = scores.shape
    N = B * K
    cand_logp, cand = logp.topk(pre_beam, dim=1)  # (N, P)
    total = scores.view(N, 1) + cand_logp + ctc_weight * scorer.score(cand, finished)
    top, idx = total.view(B, K * pre_beam).topk(K, dim=1)
    chosen = (torch.arange(B, device=scores.device)[:, None] * K * pre_beam + idx).view(N)
    scorer.advance(chosen)
    return chosen // pre_beam, cand.view(-1)[chosen], top


def _only_end_at_limit(logp: torch.Tensor, at_limit: torch.Tensor, eos: int) -> torch.Tensor:
    if not bool(at_limit.any()):
        return logp
    not_end = torch.ones(logp.shape[-1], dtype=torch.bool, device=logp.device)
    not_end[eos] = False
    return logp.masked_fill(at_limit[:, None] & not_end, float("-inf"))


def _frozen_if_finished(logp: torch.Tensor, finished: torch.Tensor) -> torch.Tensor:
    """A finished hypothesis continues only with padding (token 0) at log-probability 0."""
    if not bool(finished.any()):
        return logp
    frozen = torch.full_like(logp[0], float("-inf"))
    frozen[0] = 0.0
    return torch.where(finished[:, None], frozen, logp)
