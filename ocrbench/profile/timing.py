"""Step timing: warm-up, then per-step times, summarised by the median and the interquartile range.

On CUDA every timed step is bracketed by a pair of CUDA events recorded on the current stream, and the host
synchronises once after the last step (a host clock around an asynchronous launch measures the launch, not
the work). On the CPU each step is timed with ``time.perf_counter``. Data is prepared before the timed
region; the callable times only the step.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class TimingStats:
    """Per-step times in seconds."""

    median: float
    q1: float
    q3: float
    mean: float
    n: int
    warmup: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @classmethod
    def from_samples(cls, seconds: list[float], warmup: int = 0) -> TimingStats:
        if not seconds:
            raise ValueError("no timed steps")
        if len(seconds) == 1:
            q1 = q3 = seconds[0]
        else:
            q1, _, q3 = statistics.quantiles(seconds, n=4, method="inclusive")
        return cls(statistics.median(seconds), q1, q3, statistics.fmean(seconds), len(seconds), warmup)

    def per_second(self, items_per_step: int) -> float:
        """Throughput: items of one step over the median step time."""
        return items_per_step / self.median

    def as_dict(self, prefix: str = "step_ms") -> dict:
        ms = {k: round(v * 1e3, 4) for k, v in asdict(self).items() if k not in ("n", "warmup")}
        return {**{f"{prefix}_{k}": v for k, v in ms.items()}, f"{prefix}_iqr": round(self.iqr * 1e3, 4),
                "timed_steps": self.n, "warmup_steps": self.warmup}


def time_steps(step: Callable[[], object], device: torch.device | str, warmup: int = 10, iters: int = 40,
               max_seconds: float | None = None, min_iters: int = 5) -> TimingStats:
    """Run ``step`` ``warmup`` times untimed, then time ``iters`` calls of it.

    Args:
        step: one step (a forward pass, or forward + backward + optimizer step); it must not block on data.
        device: where ``step`` runs; on CUDA, CUDA events time each step and one synchronize ends the run.
        max_seconds: stop timing early once this much time is spent and ``min_iters`` steps are timed
            (a cheap profile on a slow CPU); ``None`` always times ``iters`` steps.
    Returns:
        :class:`TimingStats` of the timed steps.
    """
    device = torch.device(device)
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        return TimingStats.from_samples(_cuda_times(step, device, iters, max_seconds, min_iters), warmup)
    seconds: list[float] = []
    start = time.perf_counter()
    for i in range(iters):
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
        if max_seconds is not None and i + 1 >= min_iters and time.perf_counter() - start > max_seconds:
            break
    return TimingStats.from_samples(seconds, warmup)


def _cuda_times(step, device: torch.device, iters: int, max_seconds: float | None, min_iters: int) -> list[float]:
    torch.cuda.synchronize(device)
    events = []
    start = time.perf_counter()
    with torch.cuda.device(device):
        for i in range(iters):
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            step()
            end.record()
            events.append((begin, end))
            # the host clock only decides when to stop early; the reported times come from the events
            if max_seconds is not None and i + 1 >= min_iters and time.perf_counter() - start > max_seconds:
                break
        torch.cuda.synchronize(device)
    return [begin.elapsed_time(end) / 1e3 for begin, end in events]
