"""LineCNN: a LeNet-style CNN (LeCun et al. 1998) slid over the line in overlapping windows, one CTC frame per window.

As in the Full Stack Deep Learning text recognizer labs. The sliding window is computed fully
convolutionally: a convolutional trunk (stride 4) runs once over the whole line, then a "window" convolution
whose kernel spans the full height and ``window_width`` image columns, applied every ``window_stride``
columns, plays the role of the per-window fully connected layer. For interior windows this equals running
the CNN on each crop separately, without recomputing the overlap.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.charset import Charset
from ._base import CTCRecognizer, ModelInfo
from ._blocks import conv_bn_act, run_stages
from ._registry import register_model

TRUNK_STRIDE = 4  # two 2x2 max-pools


class LineCNN(CTCRecognizer):
    def __init__(self, charset: Charset, input_height: int = 64, channels=(32, 64), fc_dim: int = 256,
                 window_width: int | None = None, window_stride: int | None = None, dropout: float = 0.2):
        # Windows scale with the line height: half a line height wide (about one or two characters),
        # moved by an eighth, i.e. 32 px every 8 px at the 64-px reference height.
        window_width = window_width or input_height // 2
        window_stride = window_stride or input_height // 8
        if window_width % TRUNK_STRIDE or window_stride % TRUNK_STRIDE:
            raise ValueError(f"window_width and window_stride must be multiples of {TRUNK_STRIDE}")
        info = ModelInfo(input_height=input_height, output_stride=window_stride, min_width=window_width,
                         decoder="ctc")
        super().__init__(charset, info)
        c1, c2 = channels
        self.window_width, self.window_stride = window_width, window_stride
        # LeNet's conv-pool-conv-pool, with batch norm
        self.stages = nn.ModuleList([
            nn.Sequential(conv_bn_act(1, c1, kernel=5), nn.MaxPool2d(2)),
            nn.Sequential(conv_bn_act(c1, c2), nn.MaxPool2d(2)),
        ])
        self.window_fc = nn.Sequential(
            nn.Conv2d(c2, fc_dim, kernel_size=(input_height // TRUNK_STRIDE, window_width // TRUNK_STRIDE),
                      stride=(1, window_stride // TRUNK_STRIDE)),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(fc_dim, charset.num_classes)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        return (torch.div(widths.clamp(min=self.window_width) - self.window_width, self.window_stride,
                          rounding_mode="floor") + 1)

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        x = run_stages(self.stages, images, self.grad_checkpointing)
        x = self.window_fc(x)  # (B, fc_dim, 1, T)
        return self.head(x.squeeze(2).transpose(1, 2))  # (B, T, classes)


@register_model
def line_cnn(charset: Charset, **kwargs) -> LineCNN:
    """LeNet-style sliding-window CNN; at height 64, 32-px windows every 8 px."""
    return LineCNN(charset, **kwargs)


@register_model
def line_cnn_small(charset: Charset, **kwargs) -> LineCNN:
    """Smaller LineCNN for CPU budgets (the quick suite)."""
    return LineCNN(charset, **{"channels": (16, 32), "fc_dim": 128, **kwargs})


@register_model
def line_cnn_tiny(charset: Charset, **kwargs) -> LineCNN:
    """Tiny LineCNN for tests."""
    return LineCNN(charset, **{"channels": (8, 16), "fc_dim": 64, **kwargs})
