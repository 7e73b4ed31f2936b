"""Exported graphs in onnxruntime (CPU), behind the recognizer contract, and their parity with PyTorch.

:class:`OnnxRecognizer` has the ``collate``/``check_decoder``/``predict``/``profile_predict`` the harness calls,
with the network run by onnxruntime and everything else (collate, output lengths, decode limits, the greedy
decoders of :mod:`ocrbench.decoding`) the PyTorch model's, so :func:`ocrbench.harness.evaluate.evaluate` scores
both the same way and a CER difference can only come from the network. An autoregressive model's greedy loop
is the one of :func:`ocrbench.decoding.beam.greedy_search`, each step a call of the exported step graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..decoding import GREEDY, Decoding, as_decoding
from ..decoding.beam import greedy_search
from ..decoding.ctc import ctc_greedy_decode
from .export import Exported, require


def make_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session; ``threads`` intra-op threads (default: torch's, so both use the same cores)."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # no warnings about unused initializers on every load
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxGraphs:
    """The sessions of an :class:`~ocrbench.deploy.export.Exported` model; tensors in, tensors out by name."""

    def __init__(self, exported: Exported, threads: int | None = None):
        self.exported = exported
        self.sessions = {name: make_session(g.path, threads) for name, g in exported.graphs.items()}
        self.threads = threads or torch.get_num_threads()

    def run(self, graph: str, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run one graph; inputs the exporter pruned (unused by the network) are not fed."""
        session = self.sessions[graph]
        wanted = {i.name for i in session.get_inputs()}
        arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in feeds.items() if k in wanted}
        names = self.exported.graphs[graph].outputs
        return {n: torch.from_numpy(a) for n, a in zip(names, session.run(names, arrays))}


class OnnxRecognizer(nn.Module):
    """A recognizer whose network runs in onnxruntime (greedy decoding only); see the module docstring."""

    task = "recognition"
    decoders = ("greedy",)

    def __init__(self, model, graphs: OnnxGraphs):
        super().__init__()
        self.model, self.graphs = model, graphs
        self.kind = graphs.exported.kind
        self.name, self.info, self.charset = model.name, model.info, model.charset

    def collate(self, samples: list):
        return self.model.collate(samples)

    def check_decoder(self, decoder: str) -> None:
        if decoder not in self.decoders:
            raise NotImplementedError(f"the ONNX graphs of {self.name} are decoded greedily only, not {decoder!r}")

    def min_input_width(self, target_length: int) -> int:
        return self.model.min_input_width(target_length)

    def logits(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """A CTC model's per-frame logits."""
        return self.graphs.run("model", {"images": images, "widths": widths})["logits"]

    def encode(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[dict, dict]:
        """An autoregressive model's encoder memory and initial decoder state."""
        out = self.graphs.run("encoder", {"images": images, "widths": widths})
        exported = self.graphs.exported
        return ({k: out[f"memory.{k}"] for k in exported.memory_keys},
                {k: out[f"state.{k}"] for k in exported.state_keys})

    def decode_step(self, tokens: torch.Tensor, state: dict, memory: dict) -> tuple[torch.Tensor, dict]:
        feeds = {"tokens": tokens, **{f"state.{k}": v for k, v in state.items()},
                 **{f"memory.{k}": v for k, v in memory.items()}}
        out = self.graphs.run("step", feeds)
        return out["logits"], {k: out[f"next.{k}"] for k in self.graphs.exported.state_keys}

    def step_log_probs(self, tokens: torch.Tensor, state: dict, memory: dict) -> tuple[torch.Tensor, dict]:
        logits, state = self.decode_step(tokens, state, memory)
        return self.model.log_probs(logits), state

    @torch.no_grad()
    def predict(self, images: torch.Tensor, widths: torch.Tensor, decoding: Decoding | str = GREEDY) -> list[str]:
        self.check_decoder(as_decoding(decoding).name)
        if self.kind == "ctc":
            logits = self.logits(images, widths)
            ids = ctc_greedy_decode(logits, self.model.output_lengths(widths).clamp(max=logits.shape[1]))
        else:
            memory, state = self.encode(images, widths)
            ids = greedy_search(self.step_log_probs, state, memory, self.model.bos, self.model.eos,
                                self.model.decode_limits(memory))
        return [self.charset.decode(i) for i in ids]

    @torch.no_grad()
    def profile_predict(self, images: torch.Tensor, widths: torch.Tensor, target_length: int):
        """As the model's: an autoregressive model decodes exactly ``target_length`` characters and the end."""
        if self.kind == "ctc":
            return self.predict(images, widths)
        memory, state = self.encode(images, widths)
        limits = torch.full((images.shape[0],), target_length)
        return greedy_search(self.step_log_probs, state, memory, self.model.bos, self.model.eos, limits,
                             stop_at_eos=False)


def max_errors(reference: list[torch.Tensor], other: list[torch.Tensor]) -> dict:
    """Largest absolute difference over paired tensors, and that over the largest absolute reference value."""
    diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(reference, other, strict=True))
    scale = max(float(a.float().abs().max()) for a in reference)
    return {"max_abs_error": diff, "max_rel_error": diff / scale if scale else None}


@torch.no_grad()
def logits_parity(model, onnx: OnnxRecognizer | OnnxGraphs, images: torch.Tensor,
                  widths: torch.Tensor | None = None, steps: int = 32) -> dict:
    """Max abs and relative error of onnxruntime's outputs against PyTorch's on one batch: a CTC model's logits,
    a detector's grid, an autoregressive model's encoder output and the logits of ``steps`` decoder steps along
    PyTorch's greedy path (the same tokens fed to both; each keeps its own state)."""
    model = model.cpu().eval()
    kind = onnx.exported.kind if isinstance(onnx, OnnxGraphs) else onnx.kind
    if kind == "detector":
        return {**max_errors([model(images)], [onnx.run("model", {"images": images})["grid"]]), "compared": "grid"}
    if kind == "ctc":
        return {**max_errors([model(images, widths)], [onnx.logits(images, widths)]), "compared": "logits"}
    memory = model.encode(images, widths)
    onnx_memory, onnx_state = onnx.encode(images, widths)
    state = model.init_state(memory)
    tokens = torch.full((images.shape[0],), model.bos, dtype=torch.long)
    ours, theirs = [memory["features"]], [onnx_memory["features"]]
    for _ in range(steps):
        logits, state = model.decode_step(tokens, state, memory)
        onnx_logits, onnx_state = onnx.decode_step(tokens, onnx_state, onnx_memory)
        ours.append(logits)
        theirs.append(onnx_logits)
        tokens = model.log_probs(logits).argmax(-1)
    return {**max_errors(ours, theirs), "compared": f"encoder features and {steps} decoder steps' logits"}
