"""Building blocks shared by the reference models (one implementation each)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.checkpoint import checkpoint


def run_stages(stages: Sequence[nn.Module], x: torch.Tensor, checkpointing: bool) -> torch.Tensor:
    """Apply ``stages`` in order; with ``checkpointing`` (and grad enabled) each stage's activations are
    recomputed in backward instead of stored. Non-reentrant: the reentrant default of torch<=2.14 breaks
    with inputs that do not require grad and with autocast."""
    for stage in stages:
        if checkpointing and torch.is_grad_enabled():
            x = checkpoint(stage, x, use_reentrant=False)
        else:
            x = stage(x)
    return x


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


class BiLSTM(nn.Module):
    """Stacked bidirectional LSTM over (B, T, D) that ignores padding frames (packed sequences), so the
    backward direction starts at each line's true end rather than in the padding."""

    def __init__(self, d_in: int, hidden: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.out_features = 2 * hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out
