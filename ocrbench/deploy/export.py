"""A model to ONNX graphs, through the model contract only.

- CTC recognizers: ``forward(images, widths) -> logits`` (batch and width axes dynamic);
- autoregressive recognizers (:class:`~ocrbench.models._seq2seq.Seq2SeqRecognizer`): an ``encoder`` graph
  ``(images, widths) -> memory, initial decoder state`` and a ``step`` graph ``(tokens, state, memory) ->
  logits, next state``: ``encode``, ``init_state`` and ``decode_step`` of the contract, their dicts of tensors
  flattened to named inputs and outputs (``memory.<key>``, ``state.<key>``, ``next.<key>``). The greedy loop
  then runs in onnxruntime (:mod:`ocrbench.deploy.runtime`) with the attention state or key/value cache passed
  back in at every step;
- detectors: ``forward(images) -> grid`` (batch, height and width dynamic); box decoding stays in PyTorch.

Which axes are dynamic is observed, not declared: each graph's example is run at two batch sizes and widths (and
the step at two decoding positions), and every dimension that changed is named dynamic. The legacy TorchScript
exporter (``dynamo=False``) is used deliberately: it needs no extra package (the torch.export-based one needs
``onnxscript``) and exports ``nn.LSTM`` as ONNX's LSTM op; packed sequences, which ONNX lacks, are replaced while
exporting by the equivalent masked computation (:meth:`ocrbench.models._blocks.BiLSTM.forward_unpacked`).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError

ONNX_EXTRA = "pip install ocrbench[deploy]"
OPSET = 17


def require(module: str):
    """Import an optional dependency of the ``deploy`` extra, or one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{module} is not installed; it comes with the deploy extra: {ONNX_EXTRA}") from None


@dataclass
class Graph:
    """One exported ONNX file: its path and the names of its inputs and outputs, in order."""

    path: Path
    inputs: list[str]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)


@dataclass
class Exported:
    """The graphs of one model: ``{"model": ...}``, or ``{"encoder": ..., "step": ...}`` (autoregressive)."""

    kind: str  # "ctc", "seq2seq" or "detector"
    graphs: dict[str, Graph]
    memory_keys: list[str] = field(default_factory=list)
    state_keys: list[str] = field(default_factory=list)

    def files(self) -> list[Path]:
        return [g.path for g in self.graphs.values()]


def model_kind(model: nn.Module) -> str:
    """How a model exports; ``NotImplementedError`` (with the reason) for one that cannot."""
    from ..models._base import CTCRecognizer
    from ..models._detection import Detector
    from ..models._seq2seq import Seq2SeqRecognizer

    for cls, kind in ((Seq2SeqRecognizer, "seq2seq"), (CTCRecognizer, "ctc"), (Detector, "detector")):
        if isinstance(model, cls):
            return kind
    raise NotImplementedError(f"{type(model).__name__} is neither a CTC nor an autoregressive recognizer nor a "
                              "detector: the exporter knows no graph for it")


def example_lines(model, batch: int, frames: int, shrink: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random lines ``frames`` output frames wide, the last one ``shrink`` frames narrower (padding)."""
    stride = model.info.output_stride
    width = max(model.info.min_width, frames * stride)
    width = stride * -(-width // stride)
    widths = torch.full((batch,), width)
    widths[-1] = max(model.info.min_width, width - shrink * stride)
    g = torch.Generator().manual_seed(batch * 1000 + frames)
    return torch.rand(batch, 1, model.info.input_height, width, generator=g), widths


def dynamic_dims(name: str, *shapes: torch.Size) -> dict[int, str]:
    """The axes along which ``shapes`` (one tensor's shape in several example runs) differ, named for ONNX (the
    first, rows, is every graph's ``batch``)."""
    return {d: "batch" if d == 0 else f"{name}_dim{d}" for d in range(len(shapes[0]))
            if len({s[d] for s in shapes}) > 1}


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> Graph:
    require("onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    # the legacy exporter's deprecation notices (chosen on purpose, see above), tracer notes, and its caution
    # about LSTMs at other batch sizes (our initial states are built from the input's batch: the parity tests
    # run other batch sizes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # TracerWarning is one
        torch.onnx.export(module, args, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True)
    return Graph(path, inputs, outputs, dynamic)


def export_onnx(model: nn.Module, folder: str | Path) -> Exported:
    """Export ``model`` (eval mode, on the CPU) to ONNX files in ``folder``; ``NotImplementedError`` says why a
    model cannot be exported."""
    model = model.cpu().eval()
    kind = model_kind(model)
    folder = Path(folder)
    with torch.no_grad():
        if kind == "seq2seq":
            return _export_seq2seq(model, folder)
        if kind == "detector":
            return _export_detector(model, folder)
        return _export_ctc(model, folder)


def _export_ctc(model, folder: Path) -> Exported:
    a, b = example_lines(model, 2, 24, shrink=5), example_lines(model, 3, 40, shrink=9)
    la, lb = model(*a), model(*b)
    dynamic = {"images": {0: "batch", 3: "width"}, "widths": {0: "batch"}, "logits": dynamic_dims("logits", la.shape,
                                                                                                   lb.shape)}
    graph = _export(model, a, folder / f"{model.name}.onnx", ["images", "widths"], ["logits"], dynamic)
    return Exported("ctc", {"model": graph})


class _DetectorGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


def _export_detector(model, folder: Path) -> Exported:
    multiple = model.info.min_width
    pages = torch.rand(2, 1, 4 * multiple, 3 * multiple, generator=torch.Generator().manual_seed(0))
    dynamic = {"images": {0: "batch", 2: "height", 3: "width"}, "grid": {0: "batch", 2: "rows", 3: "columns"}}
    graph = _export(_DetectorGraph(model), (pages,), folder / f"{model.name}.onnx", ["images"], ["grid"], dynamic)
    return Exported("detector", {"model": graph})


def tensor_keys(tree: dict) -> list[str]:
    """The keys of a memory or state dict whose values are tensors, in the model's order."""
    return [k for k, v in tree.items() if torch.is_tensor(v)]


class EncoderGraph(nn.Module):
    """``(images, widths) -> (*memory, *initial state)``: the contract's ``encode`` then ``init_state``."""

    def __init__(self, model, memory_keys: list[str], state_keys: list[str]):
        super().__init__()
        self.model, self.memory_keys, self.state_keys = model, memory_keys, state_keys

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        memory = self.model.encode(images, widths)
        state = self.model.init_state(memory)
        return (*(memory[k] for k in self.memory_keys), *(state[k] for k in self.state_keys))


class StepGraph(nn.Module):
    """``(tokens, *state, *memory) -> (logits, *next state)``: the contract's ``decode_step``."""

    def __init__(self, model, memory_keys: list[str], state_keys: list[str]):
        super().__init__()
        self.model, self.memory_keys, self.state_keys = model, memory_keys, state_keys

    def forward(self, tokens: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(self.state_keys)
        state = dict(zip(self.state_keys, tensors[:n]))
        memory = dict(zip(self.memory_keys, tensors[n:]))
        logits, state = self.model.decode_step(tokens, state, memory)
        return (logits, *(state[k] for k in self.state_keys))


def _steps(model, memory: dict, count: int) -> list[tuple[torch.Tensor, dict]]:
    """(tokens fed, state before) of the first ``count`` greedy steps."""
    state = model.init_state(memory)
    tokens = torch.full((memory["features"].shape[0],), model.bos, dtype=torch.long)
    seen = []
    for _ in range(count):
        seen.append((tokens, state))
        logits, state = model.decode_step(tokens, state, memory)
        tokens = logits.argmax(-1)
    return seen


def _export_seq2seq(model, folder: Path) -> Exported:
    a, b = example_lines(model, 2, 24, shrink=5), example_lines(model, 3, 40, shrink=9)
    mem_a, mem_b = model.encode(*a), model.encode(*b)
    memory_keys = tensor_keys(mem_a)
    steps_a, steps_b = _steps(model, mem_a, 3), _steps(model, mem_b, 2)
    state_keys = tensor_keys(steps_a[0][1])
    encoder_out = [f"memory.{k}" for k in memory_keys] + [f"state.{k}" for k in state_keys]
    dynamic = {"images": {0: "batch", 3: "width"}, "widths": {0: "batch"}}
    dynamic |= {f"memory.{k}": dynamic_dims(f"memory.{k}", mem_a[k].shape, mem_b[k].shape) for k in memory_keys}
    # a state's axes: those that change with the batch and width, or from step to step (a growing cache)
    state_shapes = {k: [s[k].shape for _, s in steps_a + steps_b] for k in state_keys}
    dynamic |= {f"state.{k}": dynamic_dims(f"state.{k}", *state_shapes[k]) for k in state_keys}
    encoder = _export(EncoderGraph(model, memory_keys, state_keys), a, folder / f"{model.name}.encoder.onnx",
                      ["images", "widths"], encoder_out, dynamic)
    tokens, state = steps_a[-1]  # a step with a non-empty cache: no axis is traced at size 0 or 1
    step_in = ["tokens"] + [f"state.{k}" for k in state_keys] + [f"memory.{k}" for k in memory_keys]
    step_out = ["logits"] + [f"next.{k}" for k in state_keys]
    step_dynamic = {"tokens": {0: "batch"}, "logits": {0: "batch"}}
    step_dynamic |= {n: d for n, d in dynamic.items() if n.startswith(("state.", "memory."))}
    step_dynamic |= {f"next.{k}": dynamic[f"state.{k}"] for k in state_keys}
    step = _export(StepGraph(model, memory_keys, state_keys),
                   (tokens, *(state[k] for k in state_keys), *(mem_a[k] for k in memory_keys)),
                   folder / f"{model.name}.step.onnx", step_in, step_out, step_dynamic)
    return Exported("seq2seq", {"encoder": encoder, "step": step}, memory_keys, state_keys)
