"""Per-model inference latency (batch 1), throughput (batch 32) and a training step (fp32)."""

from __future__ import annotations

import pytest
import torch

from ocrbench.profile import make_train_step, make_workload


@pytest.fixture
def workload(model_name, line_shape, device):
    height, width = line_shape
    w = make_workload(model_name, height=height, width=width)
    w.model.to(device)
    return w


def _infer(benchmark, workload, synced, batch_size):
    workload.model.eval()
    batch = workload.batch(batch_size)
    benchmark.extra_info.update(lines=batch_size, input_shape=workload.input_shape(batch_size))

    def step():
        with torch.inference_mode():
            return workload.infer(batch)

    benchmark(synced(step))


def test_infer_latency_batch1(benchmark, workload, synced):
    _infer(benchmark, workload, synced, 1)


def test_infer_throughput_batch32(benchmark, workload, synced):
    _infer(benchmark, workload, synced, 32)


def test_train_step(benchmark, workload, synced, device):
    batch_size = 32 if device.type == "cuda" else 8
    workload.model.train()
    batch = workload.batch(batch_size)
    step = make_train_step(workload, batch, device, "fp32")
    benchmark.extra_info.update(lines=batch_size, input_shape=workload.input_shape(batch_size))
    benchmark(synced(step))
