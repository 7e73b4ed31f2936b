"""The deployment rows of one checkpoint: export with parity, int8 quality, latency by line length.

Every row names its model, checkpoint and measure (``export``, ``int8``, ``latency``), has a ``status`` (``ok``,
``n/a`` with the ``reason``, or ``error`` with the ``error``), and is stamped with the environment (device,
versions, threads, git revision), onnxruntime's thread count and the 1-minute load average when it was measured.
A failure becomes a row; the other measurements go on (a model that cannot be exported still gets its eager
latency). CER is computed by the harness's :func:`~ocrbench.harness.evaluate.evaluate` on the CPU, the same
lines and batches for every backend, greedy decoding.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from importlib import metadata
from pathlib import Path

import torch

from ..harness.evaluate import evaluate
from ..profile.compiled import compile_error_text
from ..records import environment
from .export import Exported, export_onnx
from .latency import LINE_CHARS, compiled_latency_rows, latency_rows, quantize_onnx, quantize_torch
from .runtime import OnnxGraphs, OnnxRecognizer, logits_parity

PARITY_LINES = 8  # lines (pages, for a detector) of the logits comparison
DETECTOR_NA = "a detector reads pages, not lines: no line-length latency, CER or int8 row"


@dataclass(frozen=True)
class DeployOptions:
    """What to measure besides export and parity."""

    latency: bool = True
    int8: bool = True
    compile: bool = True
    chars: tuple[int, ...] = LINE_CHARS
    batch_size: int = 32  # of the CER evaluations
    device: str = "cpu"  # of the eager and compiled latency rows (onnxruntime and int8 run on the CPU)
    warmup: int = 3
    iters: int = 20
    max_seconds: float | None = 1.5  # per line length and backend


def stamp(device: torch.device) -> dict:
    """What produced a row (see the module docstring)."""
    versions = {}
    for package in ("onnx", "onnxruntime"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {**environment(device), **versions, "ort_threads": torch.get_num_threads(),
            "loadavg_1m": round(os.getloadavg()[0], 2), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


class Predictors:
    """The backends of one model, each built once, on first use (a failure to build is raised at each use)."""

    def __init__(self, model, exported: Exported | None, out: Path):
        self.model, self.exported, self.out = model, exported, out

    def _need_export(self) -> Exported:
        if self.exported is None:
            raise RuntimeError("no ONNX export (see the export row)")
        return self.exported

    @cached_property
    def onnx(self) -> OnnxRecognizer:
        return OnnxRecognizer(self.model, OnnxGraphs(self._need_export()))

    @cached_property
    def eager_int8(self):
        return quantize_torch(self.model)

    @cached_property
    def onnx_int8(self) -> OnnxRecognizer:
        return OnnxRecognizer(self.model, OnnxGraphs(quantize_onnx(self._need_export(), self.out)))

    def get(self, backend: str):
        return getattr(self, {"onnxruntime": "onnx", "eager-int8": "eager_int8",
                              "onnxruntime-int8": "onnx_int8"}[backend])


def measure_checkpoint(model, checkpoint: str, dataset, dataset_name: str, out: str | Path,
                       options: DeployOptions) -> list[dict]:
    """Every deployment row of ``model`` (loaded from ``checkpoint``) on ``dataset`` (the split its CERs are
    measured on, named ``dataset_name``); ONNX files are written to ``out``."""
    base = {"model": model.name, "checkpoint": str(checkpoint), "dataset": dataset_name,
            "split": getattr(dataset, "split", None)}
    model = model.cpu().eval()
    export_row, exported = _export_row(model, dataset, Path(out), options.batch_size)
    rows = [export_row]
    if model.task != "recognition":
        rows.append({"measure": "latency", "status": "n/a", "reason": DETECTOR_NA})
    else:
        predictors = Predictors(model, exported, Path(out))
        if options.int8:
            rows += _int8_rows(predictors, dataset, options, export_row)
        if options.latency:
            rows += _latency_rows(predictors, options)
    cpu = torch.device("cpu")
    return [{**base, **r, **stamp(torch.device(options.device) if r.get("backend") in ("eager", "compiled")
                                  else cpu)} for r in rows]


def _export_row(model, dataset, out: Path, batch_size: int) -> tuple[dict, Exported | None]:
    row = {"measure": "export", "format": "onnx"}
    try:
        start = time.perf_counter()
        exported = export_onnx(model, out)
        row |= {"export_s": round(time.perf_counter() - start, 2), "kind": exported.kind,
                "onnx_files": [p.name for p in exported.files()],
                "onnx_bytes": sum(p.stat().st_size for p in exported.files())}
        row |= _parity(model, OnnxGraphs(exported), dataset, batch_size)
    except NotImplementedError as e:
        return {**row, "status": "n/a", "reason": str(e)}, None
    except Exception as e:  # a model that cannot be exported gets a row that says why
        return {**row, "status": "error", "error": compile_error_text(e)}, None
    return {**row, "status": "ok"}, exported


def _cer(predictor, dataset, batch_size: int) -> float:
    return evaluate(predictor, dataset, "greedy", batch_size=batch_size, device="cpu").cer


def _parity(model, graphs: OnnxGraphs, dataset, batch_size: int) -> dict:
    """Logits parity on the first lines of ``dataset``; for a recognizer also both CERs on all of it."""
    batch = model.collate([dataset[i] for i in range(min(PARITY_LINES, len(dataset)))])
    if graphs.exported.kind == "detector":
        return logits_parity(model, graphs, batch.images)
    onnx = OnnxRecognizer(model, graphs)
    found = logits_parity(model, onnx, batch.images, batch.widths)
    cer_torch, cer_onnx = _cer(model, dataset, batch_size), _cer(onnx, dataset, batch_size)
    return {**found, "lines": len(dataset), "cer_torch": cer_torch, "cer_onnx": cer_onnx,
            "cer_equal_4dp": round(cer_torch, 4) == round(cer_onnx, 4)}


def _int8_rows(predictors: Predictors, dataset, options: DeployOptions, export_row: dict) -> list[dict]:
    """CER of each int8 backend beside its fp32 one (same lines, same batches)."""
    cer_torch = export_row.get("cer_torch")
    if cer_torch is None:  # no export: the eager int8 row still has its fp32 reference
        cer_torch = _cer(predictors.model, dataset, options.batch_size)
    rows = []
    for backend, fp32 in (("eager-int8", cer_torch), ("onnxruntime-int8", export_row.get("cer_onnx"))):
        row = {"measure": "int8", "backend": backend, "cer_fp32": fp32}
        try:
            cer = _cer(predictors.get(backend), dataset, options.batch_size)
            row |= {"status": "ok", "cer_int8": cer, "cer_change": cer - fp32}
        except Exception as e:  # e.g. no export to quantise: say so, the other backend still runs
            row |= {"status": "error", "error": compile_error_text(e)}
        rows.append(row)
    return rows


def _latency_rows(predictors: Predictors, options: DeployOptions) -> list[dict]:
    device, model = torch.device(options.device), predictors.model
    timing = {"warmup": options.warmup, "iters": options.iters, "max_seconds": options.max_seconds}
    model.to(device)
    rows = latency_rows("eager", model, options.chars, device, **timing)
    if options.compile:
        rows += compiled_latency_rows(model, options.chars, device, **timing)
    model.cpu()
    for backend in ("onnxruntime", "eager-int8", "onnxruntime-int8") if options.int8 else ("onnxruntime",):
        try:
            predictor = predictors.get(backend)
        except Exception as e:
            rows += [{"measure": "latency", "backend": backend, "chars": n, "status": "error",
                      "error": compile_error_text(e)} for n in options.chars]
            continue
        rows += latency_rows(backend, predictor, options.chars, torch.device("cpu"), **timing)
    return rows
