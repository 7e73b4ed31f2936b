"""The CTC prefix scorer of joint CTC/attention search against brute force over every frame path."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ocrbench.decoding.ctc_prefix import CTCPrefixScorer

C, EOS = 3, 4  # CTC classes: 0 blank, 1 'a', 2 'b'; tokens 1, 2 the same labels, 4 the end


def collapse(path) -> tuple[int, ...]:
    out = []
    for i, c in enumerate(path):
        if c and (i == 0 or c != path[i - 1]):
            out.append(c)
    return tuple(out)


def brute(log_probs: torch.Tensor, frames: int, prefix: tuple[int, ...], exact: bool) -> float:
    """log P(the collapse of the frames starts with ``prefix``), or equals it (``exact``), summed over paths."""
    total = 0.0
    for path in itertools.product(range(C), repeat=frames):
        seq = collapse(path)
        if (seq == prefix) if exact else (seq[: len(prefix)] == prefix):
            total += math.exp(sum(log_probs[t, c].item() for t, c in enumerate(path)))
    return math.log(total) if total else float("-inf")


@pytest.mark.parametrize("seed", [0, 1])
def test_prefix_and_end_scores_are_the_sums_over_every_path(seed):
    """Two lines of 6 and 4 valid frames; along a prefix grown one label at a time (repeats included), the
    accumulated increments are log P(collapse starts with the prefix), and the end token's is log P(exactly)."""
    g = torch.Generator().manual_seed(seed)
    log_probs = (torch.randn(2, 6, C, generator=g) * 1.5).log_softmax(-1)
    lengths = torch.tensor([6, 4])
    scorer = CTCPrefixScorer(log_probs, lengths, rows_per_line=1, eos=EOS)
    prefix, accumulated = (), torch.zeros(2, dtype=torch.float64)
    candidates = torch.tensor([[1, 2, EOS]] * 2)
    for label in (1, 1, 2):
        delta = scorer.score(candidates, torch.zeros(2, dtype=torch.bool)).double()
        for line in range(2):
            frames = int(lengths[line])
            for j, token in enumerate((1, 2)):
                assert (accumulated[line] + delta[line, j]).item() == pytest.approx(
                    brute(log_probs[line], frames, (*prefix, token), exact=False), abs=1e-5)
            assert (accumulated[line] + delta[line, 2]).item() == pytest.approx(
                brute(log_probs[line], frames, prefix, exact=True), abs=1e-5)
        chosen = label - 1  # the candidate's column
        accumulated = accumulated + delta[:, chosen]
        scorer.advance(torch.tensor([0 * 3 + chosen, 1 * 3 + chosen]))
        prefix = (*prefix, label)


def test_the_end_score_matches_the_ctc_loss_and_finished_rows_score_nothing():
    g = torch.Generator().manual_seed(3)
    log_probs = torch.randn(1, 9, C, generator=g).log_softmax(-1)
    scorer = CTCPrefixScorer(log_probs, torch.tensor([9]), rows_per_line=2, eos=EOS)
    accumulated = torch.zeros(2, dtype=torch.float64)
    for label in (2, 1, 2):
        delta = scorer.score(torch.tensor([[label, EOS]] * 2), torch.zeros(2, dtype=torch.bool)).double()
        accumulated += delta[:, 0]
        scorer.advance(torch.tensor([0, 2]))
    end = scorer.score(torch.tensor([[EOS, 0]] * 2), torch.tensor([False, True]))
    nll = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), torch.tensor([[2, 1, 2]]), torch.tensor([9]),
                                       torch.tensor([3]), reduction="sum")
    assert (accumulated[0] + end[0, 0]).item() == pytest.approx(-nll.item(), abs=1e-5)
    assert end[1].tolist() == [0.0, 0.0]  # a finished hypothesis: only padding follows, at no cost
