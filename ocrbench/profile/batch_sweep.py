"""Batch-size sweeps: the throughput-optimal batch of a model, found by doubling.

From batch 1, the batch is doubled while the throughput (lines/s) still improves by at least
:data:`SWEEP_MIN_GAIN` over the best so far; on CUDA out-of-memory the sweep backs off between the last batch
that ran and the one that did not (×3/4 steps, as the profiler's back-off) and stops there. The optimum is
the measured batch of highest throughput; the batch-1 step time is the latency beside it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..runtime import is_out_of_memory

SWEEP_MIN_GAIN = 0.05  # keep doubling while throughput grows by >= 5%: below that, timing noise decides
SWEEP_MAX_BATCH = 1024  # the largest batch a sweep tries unless told otherwise


@dataclass
class SweepResult:
    """Every measured batch (``points``: the measurement dicts, in the order measured), the best one and why
    the sweep stopped."""

    points: list[dict] = field(default_factory=list)
    stop: str = ""

    @property
    def best(self) -> dict:
        return max(self.points, key=lambda p: p["samples_per_s"])

    @property
    def latency_ms_batch1(self) -> float | None:
        return next((p["step_ms_median"] for p in self.points if p["batch_size"] == 1), None)

    def summary(self) -> list[dict]:
        keys = ("batch_size", "samples_per_s", "step_ms_median")
        return [{k: p[k] for k in keys} for p in self.points]


def smaller_batch(batch_size: int) -> int:
    """Next batch size to try after an out-of-memory error: 3/4, kept a multiple of 8 while it can be."""
    if batch_size <= 8:
        return batch_size // 2
    return max(8, (batch_size * 3 // 4) // 8 * 8)


def _free_cuda_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sweep_batch_sizes(measure: Callable[[int], dict], max_batch: int = SWEEP_MAX_BATCH,
                      min_gain: float = SWEEP_MIN_GAIN) -> SweepResult:
    """Double the batch from 1 while throughput improves by ``min_gain`` or more.

    Args:
        measure: runs the timed steps at a batch size; returns a dict with ``batch_size``, ``samples_per_s``
            and ``step_ms_median``; raises ``torch.cuda.OutOfMemoryError`` when the batch does not fit.
        max_batch: the sweep stops after this batch.
    Returns:
        :class:`SweepResult`; an out-of-memory error at batch 1 is raised.
    """
    result, batch = SweepResult(), 1
    while True:
        try:
            point = measure(batch)
        except RuntimeError as e:  # cuDNN/cuBLAS allocation failures are RuntimeErrors too
            if not is_out_of_memory(e) or not result.points:
                raise
            oom_at = batch
        else:
            gain = point["samples_per_s"] / result.best["samples_per_s"] - 1 if result.points else None
            result.points.append(point)
            if gain is not None and gain < min_gain:
                result.stop = f"gain {gain:+.1%} < {min_gain:.0%} at batch {batch}"
                return result
            if 2 * batch > max_batch:
                result.stop = f"max batch {max_batch}"
                return result
            batch *= 2
            continue
        _free_cuda_memory()  # outside the except block: the traceback's frames hold the failed step's tensors
        _back_off(measure, result, oom_at)
        return result


def _back_off(measure: Callable[[int], dict], result: SweepResult, oom_at: int) -> None:
    """After out-of-memory at ``oom_at``, try batches between the last that ran and it, largest first."""
    last = result.points[-1]["batch_size"]
    batch, result.stop = smaller_batch(oom_at), f"out of memory at batch {oom_at}"
    while batch > last:
        try:
            result.points.append(measure(batch))
            result.stop += f", backed off to {batch}"
            return
        except RuntimeError as e:
            if not is_out_of_memory(e):
                raise
        _free_cuda_memory()
        batch = smaller_batch(batch)
