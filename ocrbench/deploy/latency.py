"""One-line (batch 1) latency by line length, and the int8 variants of a model.

A line of ``chars`` characters is ``chars / 2`` line heights wide (about two handwritten characters per line
height, as the profiler's synthetic lines: :func:`ocrbench.profile.workloads.line_target_length`), rounded up to
the model's output stride and never narrower than the model needs for that many characters. What is timed is
the model contract's ``profile_predict`` (forward and greedy decoding; an autoregressive model decodes exactly
``chars`` characters and the end token, so every backend does the same work) with the step timer of
:mod:`ocrbench.profile.timing` (warm-up, median and IQR; CUDA events and a synchronize on CUDA).

Backends: ``eager`` (PyTorch), ``compiled`` (``torch.compile(dynamic=True)`` of the contract's network calls,
``forward``, or ``encode`` and ``decode_step``: the greedy loop itself stays in Python, as it does for
onnxruntime, and one compilation serves every width), ``onnxruntime`` (always the CPU provider, with torch's
thread count), and the int8 ones: ``eager-int8`` (``torch.ao.quantization.quantize_dynamic`` of the Linear,
LSTM and LSTMCell layers, CPU only) and ``onnxruntime-int8`` (onnxruntime's dynamic quantisation of the
exported graphs' MatMul, Gemm and LSTM nodes, int8 weights).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..profile.compiled import compile_error_text
from ..profile.timing import time_steps
from .export import Exported, require

LINE_CHARS = (8, 16, 32, 64, 128)
CHARS_PER_HEIGHT = 2  # characters per line height of width (the profiler's synthetic lines)
INT8_LAYERS = {nn.Linear, nn.LSTM, nn.LSTMCell}  # the layers dynamic quantisation has int8 kernels for
# the same layers in ONNX (linear layers export as MatMul or Gemm): convolutions stay float in both backends, so
# the two int8 rows quantise the same weights (onnxruntime's Conv quantiser also needs constant weights, which
# batch-norm folding does not always leave)
ONNX_INT8_OPS = ["MatMul", "Gemm", "LSTM"]


def line_width(model, chars: int) -> int:
    """Width in pixels of a line of ``chars`` characters at the model's height (see the module docstring)."""
    stride = model.info.output_stride
    width = max(chars * model.info.input_height // CHARS_PER_HEIGHT, model.min_input_width(chars))
    return stride * -(-width // stride)


def one_line(model, chars: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A random line of ``chars`` characters' width, batch 1, built before any timed region."""
    width = line_width(model, chars)
    g = torch.Generator().manual_seed(chars)
    images = torch.rand(1, 1, model.info.input_height, width, generator=g)
    return images.to(device), torch.tensor([width], device=device)


def time_line(predictor, chars: int, device: torch.device, warmup: int, iters: int,
              max_seconds: float | None) -> dict:
    """Latency of ``predictor.profile_predict`` on one line of ``chars`` characters (a row's timing fields)."""
    images, widths = one_line(predictor, chars, device)

    def step():
        with torch.inference_mode():
            predictor.profile_predict(images, widths, chars)

    stats = time_steps(step, device, warmup=warmup, iters=iters, max_seconds=max_seconds, min_iters=5)
    return {"chars": chars, "width": int(widths[0]), "height": predictor.info.input_height,
            **stats.as_dict("latency_ms")}


def network_calls(model) -> tuple[str, ...]:
    """The contract's calls that hold a model's network (what ``compiled`` compiles)."""
    return ("encode", "decode_step") if hasattr(model, "decode_step") else ("forward",)


@contextmanager
def compiled_calls(model, mode: str = "default") -> Iterator[None]:
    """Within the block, the model's network calls run ``torch.compile``'d (dynamic shapes: one compilation for
    every line width and decoding position); dynamo's caches are cleared afterwards."""
    torch._dynamo.reset()
    for name in network_calls(model):
        setattr(model, name, torch.compile(getattr(model, name), dynamic=True, mode=mode))
    try:
        yield
    finally:
        for name in network_calls(model):
            model.__dict__.pop(name, None)  # the class's method again
        torch._dynamo.reset()


def latency_rows(backend: str, predictor, chars: tuple[int, ...], device: torch.device, warmup: int = 3,
                 iters: int = 20, max_seconds: float | None = 1.5) -> list[dict]:
    """One row per line length for ``predictor`` (a model, or an :class:`~ocrbench.deploy.runtime.OnnxRecognizer`);
    a failure becomes the row's error and the other lengths still run."""
    rows = []
    for n in chars:
        row = {"measure": "latency", "backend": backend, "chars": n}
        try:
            row |= {"status": "ok", **time_line(predictor, n, device, warmup, iters, max_seconds)}
        except Exception as e:  # one length's failure (e.g. out of memory) must not end the run
            row |= {"status": "error", "error": compile_error_text(e)}
        rows.append(row)
    return rows


def compiled_latency_rows(model, chars: tuple[int, ...], device: torch.device, **timing) -> list[dict]:
    """``compiled`` rows; ``compile_s`` is the wall time of a first call at every line length (tracing and code
    generation: dynamo specialises on the first shape and recompiles with dynamic shapes at the next, and some
    lengths still recompile), all before any timing. A model that does not compile gets one error row per
    length saying why."""
    try:
        with compiled_calls(model):
            start = time.perf_counter()
            for n in chars:
                time_line(model, n, device, warmup=1, iters=1, max_seconds=None)
            compile_s = round(time.perf_counter() - start, 2)
            rows = latency_rows("compiled", model, chars, device, **timing)
    except Exception as e:  # dynamo or inductor failed: the eager rows stand
        error = compile_error_text(e)
        return [{"measure": "latency", "backend": "compiled", "chars": n, "status": "error", "error": error}
                for n in chars]
    return [{**r, "compile_s": compile_s} for r in rows]


def quantize_torch(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with int8 dynamic quantisation of its Linear and LSTM layers (CPU kernels)."""
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu().eval(), INT8_LAYERS, dtype=torch.qint8)


def quantize_onnx(exported: Exported, folder: str | Path) -> Exported:
    """onnxruntime's dynamic quantisation (int8 weights, activations quantised at run time) of every graph's
    linear and LSTM layers."""
    quantization = require("onnxruntime.quantization")
    graphs = {}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a warning per tensor it leaves in float
    try:
        for name, g in exported.graphs.items():
            path = Path(folder) / g.path.name.replace(".onnx", ".int8.onnx")
            quantization.quantize_dynamic(str(g.path), str(path), weight_type=quantization.QuantType.QInt8,
                                          op_types_to_quantize=ONNX_INT8_OPS)
            graphs[name] = replace(g, path=path)
    finally:
        root.setLevel(level)
    return replace(exported, graphs=graphs)
