"""Feature-map tracing: which line crops excite a channel of a layer most, what input patch its peak sees,
and how a layer's maps develop during training.

The receptive field of a peak is found **empirically, from input gradients**, in two flavours:

- *theoretical* (the box drawn): the support of the gradient of that unit in a linearised copy of the model
  (activations, batch norm and dropout made identities, max-pools made average pools, every weight positive
  and biases zero, input all ones), where no path can be gated off or cancel. The support is then exactly the
  set of input pixels connected to the unit, i.e. the classic receptive-field arithmetic
  (r += (k - 1) * j; j *= s; Araujo et al. 2019, "Computing receptive fields of CNNs", Distill) clipped at
  the image border, and residual branches are handled without knowing a model's structure.
- *effective* (the heat map): the gradient of the unit in the real model on the real line, which shows the
  pixels that actually move it (Luo et al. 2016: the effective field is much smaller than the theoretical one).

Layers are named as in ``model.named_modules()``; the model is run through its contract
(``model.forward_features``: the encoder of an encoder-decoder model, else the forward) and stopped once the
layer has produced its output.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UnknownNameError, UserError
from ..harness.callbacks import Callback

FEATURE_HISTORY = "feature_history.pt"  # the recorder's file inside a run folder
# modules made identities in the linearised copy: they gate, rescale or mix values but never widen the field
_LINEARISED_AWAY = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Hardswish,
                    nn.Mish, nn.PReLU, nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.modules.dropout._DropoutNd)


class _Captured(Exception):
    """Raised by the hook once the layer ran: nothing after the layer is needed."""


@dataclass(frozen=True)
class Box:
    """A half-open pixel box of the input line: rows ``top:bottom``, columns ``left:right``."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


@dataclass
class Peak:
    """The strongest response of the traced channel on one line of the dataset."""

    index: int  # line of the split
    value: float
    y: int  # feature-map row and column of the peak
    x: int
    text: str


@dataclass
class TracedPeak:
    peak: Peak
    image: np.ndarray  # (H, W) the line as the model saw it, without padding
    box: Box  # theoretical receptive field of the peak unit
    gradient: np.ndarray  # (H, W) |d activation / d input| in the real model: the effective field


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    """The module named ``layer`` in ``model.named_modules()``; an unknown name lists the valid ones."""
    modules = dict(model.named_modules())
    if not layer or layer not in modules:
        raise UnknownNameError("layer", layer, [n for n in modules if n])
    return modules[layer]


def layer_output(model: nn.Module, layer: str, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """The ``(B, C, H, W)`` output of ``layer`` for a batch (with the autograd graph when grad is enabled)."""
    module = find_layer(model, layer)
    captured: list = []

    def hook(_m, _inputs, output):
        captured.append(output)
        raise _Captured

    handle = module.register_forward_hook(hook)
    try:
        _run_to_features(model, images, widths)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise UserError(f"layer {layer!r} did not run in {type(model).__name__}'s forward pass; choose a layer "
                        "of its feature extractor")
    out = captured[0]
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        raise UserError(f"layer {layer!r} does not output a (batch, channels, height, width) feature map; "
                        "choose a convolutional layer or stage")
    return out


def _run_to_features(model: nn.Module, images: torch.Tensor, widths: torch.Tensor) -> None:
    model.forward_features(images, widths)  # an encoder-decoder model runs its encoder only


def valid_columns(feature_width: int, image_width: int, widths: torch.Tensor) -> torch.Tensor:
    """Feature-map columns that lie over each line's ink rather than the batch's right padding."""
    return torch.ceil(widths.float() * feature_width / image_width).long().clamp(1, feature_width)


def top_activations(model: nn.Module, dataset, layer: str, channel: int, k: int = 8, limit: int | None = None,
                    batch_size: int = 32) -> list[Peak]:
    """The ``k`` lines (of the first ``limit`` of ``dataset``) whose maximum of ``channel`` in ``layer`` is
    highest, strongest first, each with the feature-map position of that maximum."""
    model.eval()
    collate = model.collate
    device = next(model.parameters()).device
    n = len(dataset) if limit is None else min(limit, len(dataset))
    peaks: list[Peak] = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = collate([dataset[i] for i in range(start, min(n, start + batch_size))])
            fmap = layer_output(model, layer, batch.images.to(device), batch.widths.to(device))
            _check_channel(channel, fmap.shape[1], layer)
            peaks += _batch_peaks(fmap[:, channel].float().cpu(), batch, start)
    return sorted(peaks, key=lambda p: -p.value)[:k]


def _check_channel(channel: int, channels: int, layer: str) -> None:
    if not 0 <= channel < channels:
        raise UserError(f"layer {layer!r} has {channels} channels: choose --channel 0..{channels - 1}")


def _batch_peaks(maps: torch.Tensor, batch, start: int) -> list[Peak]:
    """The maximum of each line's channel map over its valid columns: (B, H, W) maps."""
    cols = valid_columns(maps.shape[2], batch.images.shape[3], batch.widths)
    peaks = []
    for i, m in enumerate(maps):
        valid = m[:, : int(cols[i])]
        flat = int(valid.argmax())
        y, x = divmod(flat, valid.shape[1])
        peaks.append(Peak(start + i, float(valid[y, x]), y, x, batch.texts[i]))
    return peaks


def trace_peaks(model: nn.Module, dataset, layer: str, channel: int, peaks: Sequence[Peak]) -> list[TracedPeak]:
    """Each peak with its line image, theoretical receptive field and effective (gradient) field."""
    collate = model.collate
    traced = []
    for p in peaks:
        batch = collate([dataset[p.index]])
        width = int(batch.widths[0])
        box = receptive_field(model, layer, batch.images, batch.widths, p.y, p.x)
        grad = input_gradient(model, layer, batch.images, batch.widths, channel, p.y, p.x)
        traced.append(TracedPeak(p, batch.images[0, 0, :, :width].numpy(), box, grad[:, :width]))
    return traced


def input_gradient(model: nn.Module, layer: str, images: torch.Tensor, widths: torch.Tensor, channel: int,
                   y: int, x: int) -> np.ndarray:
    """``|d output[0, channel, y, x] / d input|`` of the model as it is (eval mode), shape (H, W)."""
    model.eval()
    device = next(model.parameters()).device
    image = images[:1].to(device).clone().requires_grad_(True)
    with torch.enable_grad():
        out = layer_output(model, layer, image, widths[:1].to(device))
        out[0, channel, y, x].backward()
    return image.grad[0, 0].abs().cpu().numpy()


def receptive_field(model: nn.Module, layer: str, images: torch.Tensor, widths: torch.Tensor, y: int, x: int) -> Box:
    """Theoretical receptive field of unit (y, x) of ``layer`` on an input of ``images``' shape: the input
    pixels connected to it (see the module docstring), clipped at the image border."""
    linear = linearised_copy(model)
    ones = torch.ones(images[:1].shape, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        out = layer_output(linear, layer, ones, widths[:1].cpu())
        out[0, :, y, x].sum().backward()
    support = ones.grad[0, 0] > 0
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    if not len(rows):
        raise UserError(f"unit ({y}, {x}) of layer {layer!r} is connected to no input pixel")
    return Box(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def linearised_copy(model: nn.Module) -> nn.Module:
    """A float64 CPU copy of ``model`` in which every path from input to output passes a positive value:
    gradient support = connectivity."""
    linear = copy.deepcopy(model).cpu().double().eval()
    for parent in list(linear.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _LINEARISED_AWAY):
                parent._modules[name] = nn.Identity()
            elif isinstance(child, nn.MaxPool2d):  # a max passes one input's gradient; an average passes all
                parent._modules[name] = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode)
    with torch.no_grad():
        for module in linear.modules():
            if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                module.weight.fill_(1.0 / module.weight[0].numel())  # an average: positive, and no overflow
                if module.bias is not None:
                    module.bias.zero_()
    return linear


def receptive_field_arithmetic(layers: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """(size, jump) of the receptive field of a chain of (kernel, stride) layers along one axis:
    r_l = r_{l-1} + (k_l - 1) * j_{l-1}, j_l = j_{l-1} * s_l (Araujo et al. 2019)."""
    size, jump = 1, 1
    for kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
    return size, jump


# ---- how feature maps develop during training ----

@dataclass
class FeatureHistory:
    """Feature maps of ``layer`` on a few fixed lines at several training steps."""

    layer: str
    model: str
    texts: list[str]
    images: torch.Tensor  # (N, 1, H, W) the fixed lines, padded
    widths: torch.Tensor  # (N,)
    steps: list[int]
    maps: list[torch.Tensor]  # per step, (N, C, h, w) in float16

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.__dict__, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureHistory:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"no feature history at {path}: train with a FeatureMapRecorder (see "
                            "docs/diagnostics-curves-features-sweeps.md) to write one")
        return cls(**torch.load(path, map_location="cpu", weights_only=False))


class FeatureMapRecorder(Callback):
    """Records ``layer``'s maps of the fixed ``lines`` at step 0, every ``every`` steps and at the end, and
    writes them to ``path`` (a :class:`FeatureHistory`). The maps are taken in eval mode without gradients,
    so the run is unchanged: batch-norm statistics are not updated and dropout draws no random numbers."""

    def __init__(self, lines: Sequence, layer: str, every: int, path: str | Path):
        if every < 1:
            raise UserError(f"feature maps are recorded every N >= 1 steps, got {every}")
        self.lines, self.layer, self.every, self.path = list(lines), layer, every, Path(path)
        self.history: FeatureHistory | None = None

    def on_train_begin(self, model, state) -> None:
        batch = model.collate(self.lines)
        find_layer(model, self.layer)  # an unknown layer fails now, not at the first snapshot
        self.history = FeatureHistory(self.layer, model.name, batch.texts, batch.images, batch.widths, [], [])
        if state.step and self.path.is_file():  # a resumed run continues its history
            old = FeatureHistory.load(self.path)
            kept = [(s, m) for s, m in zip(old.steps, old.maps) if s <= state.step]
            self.history.steps, self.history.maps = [s for s, _ in kept], [m for _, m in kept]
        if not self.history.steps or self.history.steps[-1] != state.step:
            self.record(model, state.step)

    def on_step(self, model, state, loss: float, lr: float) -> None:
        if state.step % self.every == 0:
            self.record(model, state.step)
            self.history.save(self.path)  # an interrupted run keeps what it recorded

    def on_train_end(self, model, state) -> None:
        if self.history.steps[-1] != state.step:
            self.record(model, state.step)
        self.history.save(self.path)

    def record(self, model, step: int) -> None:
        was_training = model.training
        device = next(model.parameters()).device
        model.eval()
        try:
            with torch.no_grad():
                fmap = layer_output(model, self.layer, self.history.images.to(device), self.history.widths.to(device))
        finally:
            model.train(was_training)
        self.history.steps.append(step)
        self.history.maps.append(fmap.detach().to("cpu", torch.float16))
