"""Greedy CTC decoding of a batch, and corpus CER over 10k lines."""

from __future__ import annotations

import random

import torch

from ocrbench.data.charset import Charset
from ocrbench.decoding.ctc import ctc_greedy_decode
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
