"""CRNN: convolutional stack + stacked bidirectional LSTMs + CTC (Puigcerver 2017, "Are Multidimensional
Recurrent Layers Really Necessary for Handwritten Text Recognition?").

Five conv blocks (3x3, batch norm, LeakyReLU; 2x2 max-pooling after the first three) give a width stride
of 8; the remaining height is folded into channels and read by bidirectional LSTMs that skip padding.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.charset import Charset
from ._base import CTCRecognizer, ModelInfo
from ._blocks import BiLSTM, collapse_height, run_stages
from ._registry import register_model


def _conv_block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.01, inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class CRNN(CTCRecognizer):
    def __init__(self, charset: Charset, input_height: int = 64, channels=(16, 32, 48, 64, 80),
                 hidden: int = 256, layers: int = 3, dropout: float = 0.2):
        pools = 3
        info = ModelInfo(input_height=input_height, output_stride=2**pools, min_width=2**pools, decoder="ctc")
        super().__init__(charset, info)
        c_in, stages = 1, []
        for i, c_out in enumerate(channels):
            stages.append(_conv_block(c_in, c_out, pool=i < pools))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(dropout)
        self.rnn = BiLSTM(channels[-1] * (input_height // 2**pools), hidden, layers, dropout)
        self.head = nn.Linear(self.rnn.out_features, charset.num_classes)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        # each 2x2 max-pool floors: width w -> w // 2 three times
        return torch.div(widths, self.info.output_stride, rounding_mode="floor").clamp(min=1)

    def forward(self, images: torch.Tensor, widths: torch.Tensor, host_widths: torch.Tensor | None = None
                ) -> torch.Tensor:
        x = run_stages(self.stages, images, self.grad_checkpointing)
        x = self.dropout(collapse_height(x))
        # packing needs the lengths on the host: from the batch's CPU widths when given, so no step syncs
        lengths = self.output_lengths(widths if host_widths is None else host_widths).clamp(max=x.shape[1])
        x = run_stages([lambda t: self.rnn(t, lengths)], x, self.grad_checkpointing)
        return self.head(self.dropout(x))

    def forward_batch(self, batch) -> torch.Tensor:
        return self(batch.images, batch.widths, batch.lengths_on_host(copy=False)[0])


@register_model
def crnn(charset: Charset, **kwargs) -> CRNN:
    """CNN-BiLSTM-CTC, 5 conv blocks and 3 BiLSTM layers of 256 units."""
    return CRNN(charset, **kwargs)


@register_model
def crnn_small(charset: Charset, **kwargs) -> CRNN:
    """Smaller CRNN for CPU budgets (the quick suite): 2 BiLSTM layers of 128 units."""
    return CRNN(charset, **{"hidden": 128, "layers": 2, **kwargs})


@register_model
def crnn_tiny(charset: Charset, **kwargs) -> CRNN:
    """Tiny CRNN for tests."""
    return CRNN(charset, **{"channels": (8, 16, 16, 24, 24), "hidden": 32, "layers": 1, **kwargs})
