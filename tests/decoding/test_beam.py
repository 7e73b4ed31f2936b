"""Batched seq2seq beam search against exhaustive search, greedy, and itself with an LM at weight 0."""

from __future__ import annotations

import itertools

import pytest
import torch

from ocrbench.decoding.beam import beam_search, greedy_search
from ocrbench.lm import CharLM

CHARS = "ab"
BOS, EOS, V = 3, 4, 5  # tokens: 0 pad, 1 'a', 2 'b', 3 start, 4 end


class ToyDecoder:
    """A random autoregressive model whose next-token distribution depends on the line, the position and
    the last two tokens, through the state (to exercise reordering) and the memory (a per-line offset)."""

    def __init__(self, seed: int, lines: int):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(lines, 12, V, V, V, generator=g) * 2.0

    def initial(self, lines: int):
        state = {"prev": torch.full((lines,), BOS), "t": torch.zeros(lines, dtype=torch.long)}
        return state, {"line": torch.arange(lines)}

    def step(self, tokens, state, memory):
        logits = self.table[memory["line"], state["t"].clamp(max=11), state["prev"], tokens]
        logits[:, [0, BOS]] = float("-inf")
        return logits.log_softmax(-1), {"prev": tokens, "t": state["t"] + 1}

    def score(self, line: int, seq: list[int]) -> float:
        """Log-probability of ``seq + [end]``, computed one sequence at a time."""
        state, _ = self.initial(1)
        memory, tokens, total = {"line": torch.tensor([line])}, torch.tensor([BOS]), 0.0
        for tok in seq + [EOS]:
            logp, state = self.step(tokens, state, memory)
            total += logp[0, tok].item()
            tokens = torch.tensor([tok])
        return total


def lm_scores(lm, seqs: list[list[int]]) -> list[float]:
    """log p_LM(seq + [end]) of every sequence, in one batch."""
    longest = max(map(len, seqs)) + 1
    inputs = torch.zeros(len(seqs), longest, dtype=torch.long)
    targets = torch.zeros(len(seqs), longest, dtype=torch.long)
    for i, s in enumerate(seqs):
        inputs[i, : len(s) + 1] = torch.tensor([lm.bos, *s])
        targets[i, : len(s) + 1] = torch.tensor([*s, lm.eos])
    return (-lm.nll(inputs, targets)).tolist()


def ctc_log_prob(log_probs: torch.Tensor, seq: list[int]) -> float:
    """log P_CTC(seq | frames) of one line's ``(T, C)`` log-probabilities."""
    nll = torch.nn.functional.ctc_loss(log_probs[:, None], torch.tensor([seq or [0]]), torch.tensor([len(log_probs)]),
                                       torch.tensor([len(seq)]), reduction="sum")
    return -nll.item()


def exhaustive(toy: ToyDecoder, line: int, limit: int, lm=None, weight=0.0, bonus=0.0, frames=None,
               ctc_weight=0.0) -> tuple[list[int], float]:
    """The best sequence of at most ``limit`` characters by the beam's score; ``frames``: the line's CTC
    log-probabilities (its valid frames) for the joint score."""
    seqs = [list(s) for n in range(limit + 1) for s in itertools.product([1, 2], repeat=n)]
    scores = [(1 - ctc_weight) * toy.score(line, s) + bonus * len(s) for s in seqs]
    if frames is not None:
        scores = [x + ctc_weight * ctc_log_prob(frames, s) for x, s in zip(scores, seqs)]
    if lm is not None:
        scores = [s + weight * x for s, x in zip(scores, lm_scores(lm, seqs))]
    best = max(range(len(seqs)), key=scores.__getitem__)
    return seqs[best], scores[best]


@pytest.fixture
def lm():
    torch.manual_seed(1)
    return CharLM(CHARS, hidden=8).eval()


@pytest.mark.parametrize("fusion", [{}, {"weight": 0.8}, {"weight": 0.5, "bonus": 0.3}], ids=["plain", "lm", "lm+bonus"])
def test_wide_beam_finds_the_exhaustive_best(fusion, lm):
    toy, lines, limit = ToyDecoder(0, 3), 3, 4
    state, memory = toy.initial(lines)
    use_lm = lm if fusion else None
    hyps, scores = beam_search(toy.step, state, memory, BOS, EOS, torch.full((lines,), limit), beam_width=64,
                               lm=use_lm, return_scores=True, **fusion)
    for line in range(lines):
        best, best_score = exhaustive(toy, line, limit, lm=use_lm, **fusion)
        assert hyps[line] == best
        assert scores[line].item() == pytest.approx(best_score, abs=1e-4)


@pytest.mark.parametrize("fusion", [{}, {"weight": 0.5}], ids=["joint", "joint+lm"])
def test_wide_joint_beam_finds_the_exhaustive_best_of_the_weighted_sum(fusion, lm):
    """Joint CTC/attention search: (1 - w) log p_attention + w log P_CTC(exactly the line) (+ the LM), with
    CTC frames that disagree with the attention model (so the weighting decides)."""
    toy, lines, limit = ToyDecoder(5, 3), 3, 4
    log_probs = (torch.randn(lines, 8, 3, generator=torch.Generator().manual_seed(6)) * 2).log_softmax(-1)
    lengths = torch.tensor([8, 6, 5])
    use_lm = lm if fusion else None
    moved = 0
    for ctc_weight in (0.3, 0.7):
        hyps, scores = beam_search(toy.step, *toy.initial(lines), BOS, EOS, torch.full((lines,), limit),
                                   beam_width=64, lm=use_lm, ctc=(log_probs, lengths), ctc_weight=ctc_weight,
                                   return_scores=True, **fusion)
        for line in range(lines):
            best, best_score = exhaustive(toy, line, limit, lm=use_lm, frames=log_probs[line, : lengths[line]],
                                          ctc_weight=ctc_weight, **fusion)
            assert hyps[line] == best
            assert scores[line].item() == pytest.approx(best_score, abs=1e-4)
            moved += best != exhaustive(toy, line, limit, lm=use_lm, **fusion)[0]
    assert moved  # the CTC term changed some line's best: the test sees the weighting


def test_lm_weight_zero_is_exactly_plain_beam_search(lm):
    toy, lines = ToyDecoder(2, 4), 4
    limits = torch.tensor([3, 6, 9, 12])
    plain = beam_search(toy.step, *toy.initial(lines), BOS, EOS, limits, beam_width=3, return_scores=True)
    fused = beam_search(toy.step, *toy.initial(lines), BOS, EOS, limits, beam_width=3, lm=lm, weight=0.0,
                        return_scores=True)
    assert fused[0] == plain[0]
    assert torch.equal(fused[1], plain[1])  # bit for bit, not approximately


def test_beam_width_one_is_greedy_and_limits_hold():
    toy, lines = ToyDecoder(3, 5), 5
    limits = torch.tensor([0, 1, 2, 5, 12])
    greedy = greedy_search(toy.step, *toy.initial(lines), BOS, EOS, limits)
    beam = beam_search(toy.step, *toy.initial(lines), BOS, EOS, limits, beam_width=1)
    assert beam == greedy
    assert all(len(h) <= n for h, n in zip(beam, limits.tolist()))
    assert greedy[0] == []


def test_lines_are_decoded_independently_of_their_batch():
    toy, lines = ToyDecoder(4, 4), 4
    limits = torch.tensor([5, 7, 3, 8])
    together = beam_search(toy.step, *toy.initial(lines), BOS, EOS, limits, beam_width=4)
    for line in range(lines):
        state, _ = toy.initial(1)
        alone = beam_search(toy.step, state, {"line": torch.tensor([line])}, BOS, EOS, limits[line:line + 1],
                            beam_width=4)
        assert alone[0] == together[line]
