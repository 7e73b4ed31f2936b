"""FLOP formulas for the aten ops that ``torch.utils.flop_counter.FlopCounterMode`` counts as zero.

FlopCounterMode sees ops at the dispatcher, after autograd has decomposed the composite ones, and knows
mm/addmm/bmm/baddbmm, convolutions and the CUDA attention kernels. What our models run beyond that
(found by logging every op under a ``TorchDispatchMode`` on torch 2.14):

- an LSTM on the CPU runs one ``aten.mkldnn_rnn_layer`` per layer and direction (padded input, no projection);
  on CUDA ``aten._cudnn_rnn`` (padded and packed alike), on ROCm ``aten.miopen_rnn``, on Apple ``aten._lstm_mps``.
  A packed LSTM on the CPU, a GRU, a plain RNN and the cells decompose into ``addmm``, which is counted already;
- SDPA on the CPU: ``aten._scaled_dot_product_flash_attention_for_cpu`` (with or without a mask; a mask the
  flash kernel cannot take sends it down the math path, ``bmm``, counted already);
- ``aten.mv`` (``matrix @ vector``, e.g. attention_lm's prior), ``dot``, ``addmv``, ``addbmm``;
- the fused fast paths of ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` in eval mode.

Every formula returns FLOPs = 2 × multiply-accumulates, FlopCounterMode's convention, and counts only the
matmul work (no gates' element-wise arithmetic, no softmax, no biases), as the rest of the profiler does.
Arguments arrive with tensors replaced by their shapes (FlopCounterMode's ``shape_wrapper``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

aten = torch.ops.aten


def _frames(input_shape) -> int:
    """Time steps × batch of a recurrent input: every dim but the features (``T·B`` padded, or the length of
    a packed sequence's data, which is ``sum(batch_sizes)``)."""
    return math.prod(input_shape[:-1])


def _weights_macs(shapes) -> int:
    """Multiply-accumulates of one recurrent step: the 2-D weights' elements (gates × hidden × inputs, the
    projection of an LSTM with ``proj_size``); biases (1-D) are additions."""
    return sum(math.prod(s) for s in shapes if s is not None and len(s) == 2)


def mkldnn_rnn_layer_flop(input_shape, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    """One layer and direction: ``frames × (numel(W_ih) + numel(W_hh))`` MACs."""
    return 2 * _frames(input_shape) * _weights_macs([w_ih, w_hh])


def rnn_weight_list_flop(input_shape, weights, *args, out_shape=None, **kwargs) -> int:
    """cuDNN/MIOpen RNNs: every layer and direction in one op; ``weights`` lists all their matrices."""
    return 2 * _frames(input_shape) * _weights_macs(weights)


def lstm_mps_flop(input_shape, hx, params, *args, out_shape=None, **kwargs) -> int:
    return 2 * _frames(input_shape) * _weights_macs(params)


def attention_flop(q, k, v, *args, out_shape=None, **kwargs) -> int:
    """QKᵀ and A·V over (..., L, E) queries and (..., S, E/Ev) keys and values; a mask or causality does not
    change it (the kernels compute the full product; the same convention as FlopCounterMode's)."""
    *batch, length, e = q
    return 2 * math.prod(batch) * length * k[-2] * (e + v[-1])


def mv_flop(a, v, *args, out_shape=None, **kwargs) -> int:
    return 2 * a[0] * a[1]


def addmv_flop(self_shape, a, v, *args, out_shape=None, **kwargs) -> int:
    return 2 * a[0] * a[1]


def dot_flop(a, b, *args, out_shape=None, **kwargs) -> int:
    return 2 * a[0]


def addbmm_flop(self_shape, b1, b2, *args, out_shape=None, **kwargs) -> int:
    return 2 * b1[0] * b1[1] * b1[2] * b2[2]


def _self_attention_macs(batch: int, length: int, source: int, e: int) -> int:
    """Q, K, V and output projections plus QKᵀ and A·V of an ``e``-wide multi-head attention."""
    return batch * (length * e * e + 2 * source * e * e + 2 * length * source * e + length * e * e)


def native_mha_flop(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """``nn.MultiheadAttention``'s fused path (eval, no grad, batch_first)."""
    e = query[-1]
    return 2 * _self_attention_macs(math.prod(query[:-2]) or 1, query[-2], key[-2], e)


def transformer_encoder_layer_flop(src, embed_dim, num_heads, qkv_w, qkv_b, proj_w, proj_b, use_gelu, norm_first,
                                   eps, nw1, nb1, nw2, nb2, ffn_w1, ffn_b1, ffn_w2, *args, out_shape=None,
                                   **kwargs) -> int:
    """``nn.TransformerEncoderLayer``'s fused path: self-attention, then the two feed-forward matrices."""
    batch, length = math.prod(src[:-2]) or 1, src[-2]
    ffn = batch * length * (math.prod(ffn_w1) + math.prod(ffn_w2))
    return 2 * (_self_attention_macs(batch, length, length, embed_dim) + ffn)


def _optional(name: str, formula: Callable) -> dict:
    """Ops a build may lack (MPS, ROCm): registered only where torch has them."""
    return {getattr(aten, name): formula} if hasattr(aten, name) else {}


EXTRA_FORMULAS: dict = {
    aten.mkldnn_rnn_layer: mkldnn_rnn_layer_flop,
    aten._cudnn_rnn: rnn_weight_list_flop,
    **_optional("miopen_rnn", rnn_weight_list_flop),
    **_optional("_lstm_mps", lstm_mps_flop),
    aten._scaled_dot_product_flash_attention_for_cpu: attention_flop,
    **_optional("_scaled_dot_product_fused_attention_overrideable", attention_flop),
    aten.mv: mv_flop, aten.addmv: addmv_flop, aten.dot: dot_flop, aten.vdot: dot_flop, aten.addbmm: addbmm_flop,
    aten._native_multi_head_attention: native_mha_flop,
    aten._transformer_encoder_layer_fwd: transformer_encoder_layer_flop,
}
"""Formulas added to FlopCounterMode's registry, keyed by op packet (every overload)."""
