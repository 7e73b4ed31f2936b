"""CTC prefix beam search: exact against brute force on tiny inputs, LM fusion at weight 0 is the plain
search, batching changes nothing, and the CTC models' ``beam``/``beam+lm`` decoders."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ocrbench.config import LMConfig
from ocrbench.decoding import Decoding
from ocrbench.decoding.ctc import ctc_greedy_decode
from ocrbench.decoding.ctc_beam import ctc_prefix_beam_search
from ocrbench.harness.evaluate import make_decodings
from ocrbench.lm import CharLM
from ocrbench.models import create_model

EXACT = {"beam_width": 10_000, "top_k": 10, "prune": -1e9}  # no pruning: the search is exhaustive


def brute_force(log_probs: torch.Tensor, lm=None, weight=0.0, bonus=0.0) -> tuple[list[int], float]:
    """Best labelling by summing every frame path that collapses to it, then fusing the LM."""
    T, C = log_probs.shape
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(C), repeat=T):
        lp = sum(log_probs[t, c].item() for t, c in enumerate(path))
        label = tuple(c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1]))
        totals[label] = lp if label not in totals else float(torch.logaddexp(torch.tensor(totals[label]),
                                                                              torch.tensor(lp)))

    labels = list(totals)
    scores = [totals[label] + bonus * len(label) for label in labels]
    if lm is not None:
        longest = max(map(len, labels)) + 1
        inputs = torch.zeros(len(labels), longest, dtype=torch.long)
        targets = torch.zeros(len(labels), longest, dtype=torch.long)
        for i, label in enumerate(labels):
            inputs[i, : len(label) + 1] = torch.tensor([lm.bos, *label])
            targets[i, : len(label) + 1] = torch.tensor([*label, lm.eos])
        scores = [s - weight * nll for s, nll in zip(scores, lm.nll(inputs, targets).tolist())]
    best = max(range(len(labels)), key=scores.__getitem__)
    return list(labels[best]), scores[best]


@pytest.fixture
def lm():
    torch.manual_seed(0)
    return CharLM("abc", hidden=8).eval()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("fusion", [{}, {"weight": 0.7}, {"weight": 1.0, "bonus": 0.5}], ids=["plain", "lm", "lm+bonus"])
def test_exhaustive_search_matches_brute_force(seed, fusion, lm):
    torch.manual_seed(seed)
    log_probs = (torch.randn(1, 5, 4) * 2).log_softmax(-1)
    use_lm = lm if fusion else None
    hyps, scores = ctc_prefix_beam_search(log_probs, torch.tensor([5]), lm=use_lm, return_scores=True,
                                          **EXACT, **fusion)
    best, best_score = brute_force(log_probs[0], use_lm, **fusion)
    assert hyps[0] == best
    assert scores[0] == pytest.approx(best_score, abs=1e-5)


def test_lm_weight_zero_is_exactly_plain_beam_search(lm):
    torch.manual_seed(1)
    log_probs = torch.randn(4, 30, 4).log_softmax(-1)
    lengths = torch.tensor([30, 12, 1, 25])
    plain = ctc_prefix_beam_search(log_probs, lengths, beam_width=4, return_scores=True)
    fused = ctc_prefix_beam_search(log_probs, lengths, beam_width=4, lm=lm, weight=0.0, return_scores=True)
    assert fused == plain  # labels and scores, bit for bit


def test_batch_does_not_change_a_line(lm):
    torch.manual_seed(2)
    log_probs = (torch.randn(3, 20, 4) * 3).log_softmax(-1)
    lengths = torch.tensor([20, 7, 15])
    together = ctc_prefix_beam_search(log_probs, lengths, beam_width=3, lm=lm, weight=0.5)
    for b in range(3):
        alone = ctc_prefix_beam_search(log_probs[b:b + 1, : lengths[b]], lengths[b:b + 1], beam_width=3, lm=lm,
                                       weight=0.5)
        assert alone[0] == together[b]


def test_confident_frames_give_the_greedy_path():
    labels = [1, 1, 0, 1, 2, 2, 0, 3, 0, 0]  # collapses to a a b c
    log_probs = torch.full((1, len(labels), 4), math.log(0.01 / 3))
    log_probs[0, torch.arange(len(labels)), torch.tensor(labels)] = math.log(0.99)
    greedy = ctc_greedy_decode(log_probs, torch.tensor([len(labels)]))
    assert ctc_prefix_beam_search(log_probs, torch.tensor([len(labels)]), beam_width=5) == greedy == [[1, 1, 2, 3]]


def test_ctc_model_decoders_and_lm_fusion(rendered_lines, monkeypatch):
    model = create_model("crnn_tiny", input_height=32).eval()
    assert model.decoders == ("greedy", "beam", "beam+lm")
    batch = model.collate([rendered_lines[i] for i in range(3)])
    with pytest.raises(RuntimeError, match="needs a language model"):
        model.predict(batch.images, batch.widths, "beam+lm")
    monkeypatch.setattr("ocrbench.lm.get_lm", lambda *args, **kwargs: CharLM("abc", hidden=8))
    with pytest.raises(ValueError, match="charset"):  # an LM of another charset is refused before decoding
        make_decodings(model, ("beam+lm",), LMConfig())
    lm = CharLM(model.charset.chars, hidden=16).eval()
    beam = model.predict(batch.images, batch.widths, "beam")
    assert model.predict(batch.images, batch.widths, Decoding("beam+lm", lm=lm)) == beam  # weight 0
    fused = model.predict(batch.images, batch.widths, Decoding("beam+lm", 3, lm, lm_weight=1.0, lm_bonus=0.5))
    assert len(fused) == 3 and all(set(h) <= set(model.charset.chars) for h in fused)
    assert "_lm" not in vars(model)  # the LM stays in the Decoding value, not on the model
