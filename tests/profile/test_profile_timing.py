import pytest
import torch

from ocrbench.profile import TimingStats, time_steps


def test_stats_median_and_iqr():
    stats = TimingStats.from_samples([0.4, 0.1, 0.2, 0.3, 10.0], warmup=2)
    assert stats.median == 0.3 and stats.q1 == 0.2 and stats.q3 == 0.4 and stats.n == 5
    assert abs(stats.iqr - 0.2) < 1e-12 and stats.per_second(32) == pytest.approx(32 / 0.3)
    d = stats.as_dict()
    assert d["step_ms_median"] == 300.0 and d["step_ms_iqr"] == 200.0 and d["timed_steps"] == 5
    assert d["warmup_steps"] == 2


def test_warmup_is_run_but_not_timed():
    calls = []
    stats = time_steps(lambda: calls.append(1), "cpu", warmup=3, iters=7)
    assert len(calls) == 10 and stats.n == 7 and stats.warmup == 3


def test_time_budget_stops_early_after_min_iters():
    import time

    stats = time_steps(lambda: time.sleep(0.02), "cpu", warmup=0, iters=100, max_seconds=0.05, min_iters=4)
    assert 4 <= stats.n < 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_events_time_the_kernels():
    x = torch.randn(2048, 2048, device="cuda")
    stats = time_steps(lambda: x @ x, "cuda", warmup=3, iters=10)
    assert stats.n == 10 and stats.median > 0
