"""Batch-1 latency of one line by its length (the deployment table's measurement, ocrbench.deploy.latency):
PyTorch eager on ``--device`` and onnxruntime (CPU provider, torch's thread count) on the exported graphs.
Autoregressive models decode every character of the line (``profile_predict``), so their latency grows with the
length where a CTC model's grows only with the width. ``extra_info`` records the backend, characters and width.

    pytest benchmarks/test_bench_latency.py --benchmark-only --benchmark-group-by=param:chars
"""

from __future__ import annotations

import copy
from functools import cache

import pytest
import torch

from ocrbench.deploy.latency import one_line
from ocrbench.models import create_model

CHARS = (8, 32, 128)


@cache
def _model(name: str, height: int):
    torch.manual_seed(0)
    return create_model(name, input_height=height).eval()


@cache
def _onnx(name: str, height: int, folder: str):
    from ocrbench.deploy.export import export_onnx
    from ocrbench.deploy.runtime import OnnxGraphs, OnnxRecognizer

    model = copy.deepcopy(_model(name, height)).cpu()  # its own copy: the eager tests move theirs to --device
    return OnnxRecognizer(model, OnnxGraphs(export_onnx(model, folder)))


@pytest.fixture(scope="session")
def onnx_folder(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("onnx"))


def _bench_line(benchmark, predictor, chars: int, device, backend: str, wrap):
    images, widths = one_line(predictor, chars, device)
    benchmark.extra_info.update(backend=backend, chars=chars, width=int(widths[0]), lines=1)

    def step():
        with torch.inference_mode():
            return predictor.profile_predict(images, widths, chars)

    benchmark(wrap(step))


@pytest.mark.parametrize("chars", CHARS)
def test_line_latency_eager(benchmark, model_name, line_shape, device, synced, chars):
    model = _model(model_name, line_shape[0]).to(device)
    _bench_line(benchmark, model, chars, device, "eager", synced)  # synced: a CUDA step ends when its kernels do


@pytest.mark.parametrize("chars", CHARS)
def test_line_latency_onnxruntime(benchmark, model_name, line_shape, onnx_folder, chars):
    pytest.importorskip("onnxruntime", reason="the deploy extra: pip install ocrbench[deploy]")
    onnx = _onnx(model_name, line_shape[0], onnx_folder)
    _bench_line(benchmark, onnx, chars, torch.device("cpu"), "onnxruntime", lambda step: step)  # host-side: no sync
