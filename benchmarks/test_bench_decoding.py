"""Greedy CTC decoding of a batch, one step of the joint CTC/attention search's CTC prefix scores, and corpus
CER over 10k lines."""

from __future__ import annotations

import random

import torch

from ocrbench.data.charset import Charset
from ocrbench.decoding.ctc import ctc_greedy_decode
from ocrbench.decoding.ctc_prefix import CTCPrefixScorer
from ocrbench.harness.metrics import ErrorCounts


def test_ctc_greedy_decode_batch32(benchmark, device, synced):
    charset = Charset()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 128, charset.num_classes, generator=g).to(device)
    lengths = torch.full((32,), 128, device=device)
    benchmark.extra_info["lines"] = 32

    def decode():
        return [charset.decode(ids) for ids in ctc_greedy_decode(logits, lengths)]

    assert len(benchmark(synced(decode))) == 32


def test_ctc_prefix_score_step_batch16_beam5(benchmark, device, synced):
    """What the CTC head adds to each step of a joint search: the prefix scores of 8 candidates (the pre-beam
    of beam 5) for each of 16 lines x 5 hypotheses over 128 frames, and keeping the 5 chosen per line."""
    charset = Charset()
    C, lines, beam, frames = charset.num_classes, 16, 5, 128
    g = torch.Generator().manual_seed(0)
    log_probs = torch.randn(lines, frames, C, generator=g).log_softmax(-1).to(device)
    candidates = torch.randint(1, C, (lines * beam, 8), generator=g).to(device)
    finished = torch.zeros(lines * beam, dtype=torch.bool, device=device)
    chosen = (torch.arange(lines * beam, device=device) // beam) * beam * 8  # each line's first row, first candidate
    benchmark.extra_info["lines"] = lines

    def step():
        scorer = CTCPrefixScorer(log_probs, torch.full((lines,), frames, device=device), beam, eos=C + 1)
        delta = scorer.score(candidates, finished)
        scorer.advance(chosen)
        return delta

    assert benchmark(synced(step)).shape == (lines * beam, 8)


def _corrupt(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(len(chars))
        op = rng.choice("sid")
        if op == "s":
            chars[i] = rng.choice("abcdefghij")
        elif op == "i":
            chars.insert(i, rng.choice("abcdefghij"))
        elif len(chars) > 1:
            del chars[i]
    return "".join(chars)


def test_cer_10k_lines(benchmark):
    rng = random.Random(0)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "Sphinx", "of", "quartz,"]
    refs = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 9))) for _ in range(10_000)]
    hyps = [_corrupt(r, rng) for r in refs]
    benchmark.extra_info["lines"] = len(refs)
    counts = benchmark(lambda: ErrorCounts().update(hyps, refs))
    assert counts.lines == 10_000 and 0 < counts.cer < 0.2
