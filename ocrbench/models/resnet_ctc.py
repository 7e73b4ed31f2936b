"""ResNet-CTC: a fully convolutional recognizer of residual blocks (He et al. 2016) with a CTC head.

Stages halve the height but keep the width stride at 4, so a 64-px line of width W gives W/4 CTC frames;
the height that is left is folded into channels and a 1-D convolution adds horizontal context.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.charset import Charset
from ._base import CTCRecognizer, ModelInfo
from ._blocks import BasicBlock, collapse_height, conv_bn_act, run_stages, strided_length
from ._registry import register_model


class ResNetCTC(CTCRecognizer):
    def __init__(self, charset: Charset, input_height: int = 64, widths=(32, 64, 128, 256), depths=(1, 2, 2, 1),
                 dropout: float = 0.2):
        info = ModelInfo(input_height=input_height, output_stride=4, min_width=16, decoder="ctc")
        super().__init__(charset, info)
        # stem: stride 2 in both directions; then stage strides: (2,2), (2,1), (2,1) -> height /16, width /4
        strides = [(1, 1), (2, 2), (2, 1), (2, 1)]
        stages = [conv_bn_act(1, widths[0], stride=2)]
        c_in = widths[0]
        for c_out, depth, stride in zip(widths, depths, strides):
            blocks = [BasicBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else (1, 1)) for i in range(depth)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        feat = widths[-1] * max(1, input_height // 16)
        self.context = nn.Sequential(
            nn.Conv1d(feat, widths[-1], kernel_size=3, padding=1), nn.BatchNorm1d(widths[-1]), nn.ReLU(inplace=True),
            nn.Dropout(dropout))
        self.head = nn.Linear(widths[-1], charset.num_classes)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        return strided_length(widths, self.info.output_stride)

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        x = run_stages(self.stages, images, self.grad_checkpointing)  # (B, C, H/16, W/4)
        x = self.context(collapse_height(x).transpose(1, 2))  # (B, C, T)
        return self.head(x.transpose(1, 2))


@register_model
def resnet_ctc(charset: Charset, **kwargs) -> ResNetCTC:
    """ResNet-style CTC recognizer, 6 basic blocks."""
    return ResNetCTC(charset, **kwargs)


@register_model
def resnet_ctc_small(charset: Charset, **kwargs) -> ResNetCTC:
    """Smaller ResNet-CTC for CPU budgets (the quick suite)."""
    return ResNetCTC(charset, **{"widths": (16, 32, 64, 128), "depths": (1, 1, 2, 1), **kwargs})


@register_model
def resnet_ctc_tiny(charset: Charset, **kwargs) -> ResNetCTC:
    """Tiny ResNet-CTC for tests."""
    return ResNetCTC(charset, **{"widths": (8, 16, 32, 32), "depths": (1, 1, 1, 1), **kwargs})
