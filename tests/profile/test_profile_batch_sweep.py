"""Batch sweeps: doubling until the gain falls below 5%, out-of-memory back-off, and the sweep row."""

from __future__ import annotations

import json

import pytest
import torch

from ocrbench.cli import main
from ocrbench.profile import ProfileSpec, profile_model
from ocrbench.profile.batch_sweep import sweep_batch_sizes


def fake_measure(throughput: dict[int, float], fits: int = 10**9, tried: list | None = None,
                 error=lambda: torch.cuda.OutOfMemoryError("CUDA out of memory")):
    """A measurement with a given lines/s per batch that runs out of memory above ``fits``."""

    def measure(batch: int) -> dict:
        if tried is not None:
            tried.append(batch)
        if batch > fits:
            raise error()
        speed = throughput[batch]
        return {"batch_size": batch, "samples_per_s": speed, "step_ms_median": 1e3 * batch / speed}

    return measure


def test_doubles_until_the_gain_is_below_five_percent():
    speeds = {1: 100.0, 2: 180.0, 4: 300.0, 8: 310.0, 16: 400.0}
    result = sweep_batch_sizes(fake_measure(speeds))
    # 8 gains only 3.3% over 4: the sweep stops there (16 is never tried) and 8 is the measured best
    assert [p["batch_size"] for p in result.points] == [1, 2, 4, 8]
    assert result.best["batch_size"] == 8 and "gain +3.3% < 5% at batch 8" == result.stop
    assert result.latency_ms_batch1 == pytest.approx(10.0)


def test_a_slower_larger_batch_is_not_the_best():
    result = sweep_batch_sizes(fake_measure({1: 100.0, 2: 150.0, 4: 120.0}))
    assert result.best["batch_size"] == 2 and len(result.points) == 3


def test_out_of_memory_backs_off_between_the_last_batch_that_ran_and_the_first_that_did_not():
    tried = []
    speeds = {b: 100.0 * b for b in range(1, 129)}
    result = sweep_batch_sizes(fake_measure(speeds, fits=40, tried=tried))
    assert tried == [1, 2, 4, 8, 16, 32, 64, 48]  # 64 fails, 48 fails, the next (32) ran already: stop
    assert result.best["batch_size"] == 32 and result.stop == "out of memory at batch 64"
    tried.clear()
    result = sweep_batch_sizes(fake_measure(speeds, fits=50, tried=tried))
    assert tried[-2:] == [64, 48] and result.best["batch_size"] == 48
    assert result.stop == "out of memory at batch 64, backed off to 48"


@pytest.mark.parametrize("message", ["cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
                                     "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"])
def test_cudnn_and_cublas_allocation_failures_back_off_too(message):
    """They arrive as plain RuntimeErrors, not OutOfMemoryError; any other RuntimeError is raised."""
    speeds = {b: 100.0 * b for b in range(1, 129)}
    result = sweep_batch_sizes(fake_measure(speeds, fits=50, error=lambda: RuntimeError(message)))
    assert result.best["batch_size"] == 48
    with pytest.raises(RuntimeError, match="shape"):
        sweep_batch_sizes(fake_measure(speeds, fits=4, error=lambda: RuntimeError("shape mismatch")))


def test_the_largest_batch_and_a_batch_that_never_fits():
    result = sweep_batch_sizes(fake_measure({b: 10.0 * b for b in (1, 2, 4, 8)}), max_batch=8)
    assert result.best["batch_size"] == 8 and result.stop == "max batch 8"
    with pytest.raises(torch.cuda.OutOfMemoryError):
        sweep_batch_sizes(fake_measure({1: 1.0}, fits=0))


def test_a_sweep_row_on_the_cpu():
    spec = ProfileSpec("infer", sweep=True, max_batch=4, warmup=1, iters=3)
    (row,) = profile_model("line_cnn_tiny", [spec], device="cpu", height=32, width=64)
    assert row["status"] == "ok" and row["batch_size_requested"] == "sweep", row.get("error")
    points = row["sweep_points"]
    assert [p["batch_size"] for p in points] == [1, 2, 4][: len(points)] and row["sweep_stop"]
    assert row["samples_per_s"] == max(p["samples_per_s"] for p in points)
    assert row["latency_ms_batch1"] == points[0]["step_ms_median"]


def test_the_command_takes_sweep(tmp_path, capsys):
    args = ["profile", "--model", "line_cnn_tiny", "--mode", "infer", "--height", "32", "--width", "64",
            "--batch-size", "sweep", "--max-batch", "2", "--warmup", "0", "--iters", "2", "--device", "cpu",
            "--no-save"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best batch" in out and "ms @ batch 1" in out
    assert main(args + ["--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["latency_ms_batch1"] > 0 and len(row["sweep_points"]) in (1, 2)
    assert main(["profile", "--model", "line_cnn_tiny", "--batch-size", "many", "--no-save"]) == 2
    assert "'sweep'" in capsys.readouterr().err
