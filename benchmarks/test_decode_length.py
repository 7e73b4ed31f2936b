"""Autoregressive decode time against output length, with and without the key/value cache.

``cnn_transformer_small``, untrained, greedy decoding of 8 lines forced to run exactly ``length`` steps (the
end token is ignored); the encoder runs once outside the timed function. With the cache a step costs about
the same at every position (time grows linearly with the length); recomputing the prefix makes step ``t``
cost ``t`` times a step (quadratic growth). ``extra_info["ms_per_token"]`` makes the two easy to compare:
flat with the cache, rising without it.

    pytest benchmarks/test_decode_length.py --benchmark-only --benchmark-group-by=param:cache
"""

from __future__ import annotations

import pytest
import torch

from ocrbench.decoding.beam import greedy_search
from ocrbench.models import create_model

LINES = 8
LENGTHS = (16, 32, 64, 128)


@pytest.fixture(scope="module")
def decoder_setup(device, line_shape):
    torch.manual_seed(0)
    height, _ = line_shape
    model = create_model("cnn_transformer_small", input_height=height, max_length=max(LENGTHS)).to(device).eval()
    width = max(LENGTHS) * model.info.output_stride  # enough encoder frames for the longest output
    images = torch.rand(LINES, 1, height, width, device=device)
    with torch.no_grad():
        memory = model.encode(images, torch.full((LINES,), width, device=device))
    return model, memory


def decode(model, memory, length: int, cache: bool) -> list[list[int]]:
    model.kv_cache = cache
    limits = torch.full((LINES,), length, device=memory["features"].device)
    return greedy_search(model.step_log_probs, model.init_state(memory), memory, model.bos, model.eos, limits,
                         stop_at_eos=False)


@pytest.mark.parametrize("cache", [True, False], ids=["kv_cache", "recompute"])
@pytest.mark.parametrize("length", LENGTHS)
def test_greedy_decode_time_vs_length(benchmark, decoder_setup, synced, length, cache):
    model, memory = decoder_setup
    benchmark.extra_info.update(lines=LINES, length=length, cache=cache)
    hyps = benchmark(synced(lambda: decode(model, memory, length, cache)))
    assert len(hyps) == LINES
    if benchmark.stats:  # timed run: per-token cost, flat with the cache
        benchmark.extra_info["ms_per_token"] = round(benchmark.stats.stats.median * 1e3 / (length + 1), 4)


def test_cache_and_recompute_decode_the_same(decoder_setup):
    model, memory = decoder_setup
    assert decode(model, memory, 24, cache=True) == decode(model, memory, 24, cache=False)
