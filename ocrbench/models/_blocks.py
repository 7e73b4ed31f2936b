"""Building blocks shared by the reference models (one implementation each)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.checkpoint import checkpoint


def run_stages(stages: Sequence[nn.Module], x: torch.Tensor, checkpointing: bool) -> torch.Tensor:
    """Apply ``stages`` in order; with ``checkpointing`` (and grad enabled) each stage's activations are
    recomputed in backward instead of stored. Non-reentrant: the reentrant default of torch<=2.14 breaks
    with inputs that do not require grad and with autocast. The recomputation leaves BatchNorm running
    statistics alone (they would otherwise be updated twice per step: an effective momentum of 0.19, not 0.1)."""
    for stage in stages:
        if checkpointing and torch.is_grad_enabled():
            x = checkpoint(stage, x, use_reentrant=False,
                           context_fn=lambda stage=stage: (nullcontext(), batchnorm_stats_frozen(stage)))
        else:
            x = stage(x)
    return x


@contextmanager
def batchnorm_stats_frozen(module) -> Iterator[None]:
    """BatchNorm layers of ``module`` (in training mode they still normalise with the batch's statistics)
    leave their running statistics and batch count unchanged inside this block."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] \
        if isinstance(module, nn.Module) else []
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, (momentum, count) in zip(norms, saved):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


def conv_bn_act(c_in: int, c_out: int, kernel: int = 3, stride=1, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        act(inplace=True),
    )


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016) with a tuple stride, so height and width can shrink separately."""

    def __init__(self, c_in: int, c_out: int, stride=(1, 1)):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        nn.init.zeros_(self.bn2.weight)  # each residual branch starts as identity (Goyal et al. 2017)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if c_in != c_out or tuple(stride) != (1, 1):
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(y + self.shortcut(x))


def collapse_height(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) feature map → (B, W, C·H) sequence along the writing direction."""
    b, c, h, w = x.shape
    return x.permute(0, 3, 1, 2).reshape(b, w, c * h)


def strided_length(widths: torch.Tensor, stride: int) -> torch.Tensor:
    """Frames left of ``widths`` columns after layers with total width stride ``stride`` ('same' padding)."""
    return torch.div(widths + stride - 1, stride, rounding_mode="floor").clamp(min=1)


def autocast_off(x: torch.Tensor):
    """A region without autocast on ``x``'s device, for ops whose precision is stated (cast their inputs,
    e.g. ``x.float()``) rather than left to each device's autocast op lists. Under CUDA autocast the cuDNN
    RNNs are cast to float16 whatever the autocast dtype (``aten/src/ATen/cudnn/AutocastRNN.cpp`` casts to
    ``kHalf``), ``lstm_cell`` to the autocast dtype, and CPU autocast does not cast LSTMs at all (a bfloat16
    input fails). Without autocast nothing changes: the fp32 path is the same computation."""
    return torch.autocast(device_type=x.device.type, enabled=False)


class BiLSTM(nn.Module):
    """Stacked bidirectional LSTM over (B, T, D) that ignores padding frames (packed sequences), so the
    backward direction starts at each line's true end rather than in the padding.

    Runs in float32 with autocast off (see :func:`autocast_off`), so its precision is the same on every
    device; the output is float32. Packing needs the lengths on the host: pass them on the CPU (computed from
    the batch's CPU widths) and nothing waits for the device; lengths on a device are copied to the host,
    which synchronises. The sort and its inverse are computed on the host and sent to the device with
    non-blocking copies, where ``pack_padded_sequence(enforce_sorted=False)`` would copy them synchronously
    both ways; the computation is the same (sort, pack, LSTM, unpack, unsort)."""

    def __init__(self, d_in: int, hidden: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.out_features = 2 * hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():  # ONNX has no packed sequences
            return self.forward_unpacked(x, lengths)
        lengths, order = torch.sort(lengths.cpu().long(), descending=True)
        unsort = torch.empty_like(order)
        unsort[order] = torch.arange(order.numel())
        order, unsort = order.to(x.device, non_blocking=True), unsort.to(x.device, non_blocking=True)
        with autocast_off(x):
            packed = pack_padded_sequence(x.float().index_select(0, order), lengths, batch_first=True)
            out, _ = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out.index_select(0, unsort)

    def forward_unpacked(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """What :meth:`forward` computes, without packed sequences (what ONNX export traces): each layer runs
        its forward direction over the padded rows (a frame never sees the padding after it) and its backward
        direction over each row reversed within its length, so it starts at the line's true end; padding frames
        are zero, as ``pad_packed_sequence`` leaves them. Lengths stay on the device: nothing syncs."""
        steps = torch.arange(x.shape[1], device=x.device)[None, :]
        lengths = lengths.to(x.device).long()[:, None]
        valid = steps < lengths
        # frame t of a row read backwards within its length; padding frames stay where they are
        index = torch.where(valid, lengths - 1 - steps, steps)[:, :, None]
        with autocast_off(x):
            out = x.float()
            for layer in range(self.lstm.num_layers):
                forward = self._direction(out, layer, "")
                reverse = out.gather(1, index.expand(-1, -1, out.shape[2]))
                backward = self._direction(reverse, layer, "_reverse")
                backward = backward.gather(1, index.expand(-1, -1, backward.shape[2]))
                out = torch.cat([forward, backward], 2) * valid[:, :, None]
        return out

    def _direction(self, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        """One direction of one layer of ``self.lstm`` over ``x`` (B, T, D), from zero state (eval: no dropout)."""
        params = [getattr(self.lstm, f"{name}_l{layer}{suffix}")
                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h0 = x.new_zeros(1, x.shape[0], self.lstm.hidden_size)
        out, _, _ = torch.lstm(x, (h0, h0), params, True, 1, 0.0, False, False, True)
        return out


# ---- shared by the sequence-to-sequence recognizers (attention_lm, cnn_transformer) -------------------------
class ResNetLineEncoder(nn.Module):
    """Residual conv feature extractor for a text line: ``(B, 1, H, W)`` → ``(B, W/stride, dim)``.

    A stride-2 stem, then one stage of :class:`BasicBlock` per entry of ``widths``/``depths``/``strides``
    (a stage's first block has the stage's (height, width) stride). The remaining height is folded into
    channels and projected to ``dim``. ``stages`` is exposed so the owner can checkpoint them
    (:func:`run_stages`). The default strides shrink the height 16x and the width 4x (2 to 4 frames per
    character at any line height); ``CPU_STRIDES`` shrink the width 8x and the height 32x and cost about a
    quarter of the multiply-adds, for CPU budgets (a character is still about 2 frames at 32 px).
    """

    STRIDES = ((1, 1), (2, 2), (2, 1), (2, 1))
    CPU_STRIDES = ((2, 2), (2, 2), (2, 1), (2, 1))

    def __init__(self, input_height: int, dim: int, widths: Sequence[int] = (32, 64, 96, 128),
                 depths: Sequence[int] = (1, 1, 1, 1), strides: Sequence[tuple[int, int]] = STRIDES):
        super().__init__()
        stages, c_in = [conv_bn_act(1, widths[0], stride=2)], widths[0]
        for c_out, depth, stride in zip(widths, depths, strides, strict=True):
            blocks = [BasicBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else (1, 1)) for i in range(depth)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.stride = 2 * math.prod(s[1] for s in strides)
        height_stride = 2 * math.prod(s[0] for s in strides)
        self.proj = nn.Linear(widths[-1] * max(1, -(-input_height // height_stride)), dim)
        self.out_features = dim

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        return strided_length(widths, self.stride)  # every stride-2 conv has 'same' padding: ceil(w / 2)

    def forward(self, images: torch.Tensor, checkpointing: bool = False) -> torch.Tensor:
        return self.proj(collapse_height(run_stages(self.stages, images, checkpointing)))


def sinusoidal_positions(length: int, dim: int, device=None, dtype=torch.float32, offset: int = 0) -> torch.Tensor:
    """``(length, dim)`` sinusoidal position codes (Vaswani et al. 2017), positions ``offset..offset+length-1``."""
    pos = torch.arange(offset, offset + length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-9.210340371976184 / dim))
    angles = pos * freq  # 9.21 = ln(10000)
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return pe.to(dtype)


def sliding_windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(..., T + size - 1)`` → ``(..., T, size)``: every window of ``size`` along the last axis (``unfold``).
    ONNX export cannot trace ``unfold`` over an axis of dynamic length, so while exporting the same windows are
    stacked from shifted slices (the same values)."""
    if not torch.onnx.is_in_onnx_export():
        return x.unfold(-1, size, 1)
    count = x.shape[-1] - size + 1
    return torch.stack([x[..., i:i + count] for i in range(size)], -1)


def length_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """``(B, max_length)`` bool, True at valid positions ``< lengths``."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]
