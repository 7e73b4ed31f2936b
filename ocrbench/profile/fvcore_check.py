"""Independent cross-check of the MAC counts: fvcore's ``JitModelAnalysis`` with our handles.

This was ocrbench's primary counter until TorchScript was deprecated (PyTorch 2.11); it traces the model with
``torch.jit.trace``, so it is imported only when a cross-check is asked for (:func:`cross_checked`, from
``ocrbench profile --cross-check-flops``) and in tests. A leaf: it imports :mod:`.flops`, never the reverse. fvcore's numbers are MACs
although it calls them "flops"; it has no handle for ``aten::lstm``, ``aten::gru`` or attention, so every op
that does matmul work gets one here. Same convention as the primary counter: matmul work only (no norms,
activations, pooling, softmax, biases).
"""

from __future__ import annotations

import math
import string
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from .flops import FlopCount

with warnings.catch_warnings():  # fvcore's import scripts a loss with torch.jit.script, deprecated in torch 2.10+
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn.jit_analysis import JitModelAnalysis
    from fvcore.nn.jit_handles import conv_flop_count, get_shape


class TraceShapeError(RuntimeError):
    """The jit tracer recorded no shape for a value an op handle needs."""


# ---------------------------------------------------------------------------------------------- handles
# Each handle gets the jit values of one op's inputs and outputs and returns its MACs.

def _shape(value) -> list[int]:
    shape = get_shape(value)
    if shape is None:
        raise TraceShapeError(f"the tracer recorded no shape for {value.debugName()} ({value.type()})")
    return list(shape)


def _conv(inputs, outputs) -> int:
    transposed = bool(inputs[6].toIValue()) if len(inputs) > 6 else False
    return int(conv_flop_count(_shape(inputs[0]), _shape(inputs[1]), _shape(outputs[0]), transposed))


def _conv_nd(inputs, outputs) -> int:  # aten::conv1d/2d/3d(input, weight, bias, stride, padding, dilation, groups)
    return int(conv_flop_count(_shape(inputs[0]), _shape(inputs[1]), _shape(outputs[0])))


def _linear(inputs, outputs) -> int:
    weight = _shape(inputs[1])
    return math.prod(_shape(inputs[0])) * (weight[0] if len(weight) == 2 else 1)


def _mm_like(a: int) -> Callable:
    """Handle for products whose left operand is input ``a`` (batched, broadcasting, or 1-D operands)."""

    def handle(inputs, outputs) -> int:
        k = _shape(inputs[a])[-1]  # the contracted dim; the output holds every other one (batch dims included)
        return math.prod(_shape(outputs[0])) * k

    return handle


def _einsum(inputs, outputs) -> int:
    """Operands contracted pairwise left to right, each pair costing the product of its index sizes."""
    equation = inputs[0].toIValue().replace(" ", "")
    shapes = [_shape(v) for v in inputs[1].node().inputs()]
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if not arrow:  # implicit output: the broadcast dims, then the letters used once, in alphabetical order
        once = sorted(c for c in set(lhs) if c.isalpha() and lhs.count(c) == 1)
        rhs = ("..." if "..." in lhs else "") + "".join(once)
    if "..." in equation:  # name the broadcast dimensions with unused letters
        spare = iter(c for c in string.ascii_letters if c not in equation)
        n_ell = max(len(s) - len(t.replace("...", "")) for s, t in zip(shapes, terms))
        ell = "".join(next(spare) for _ in range(n_ell))
        terms = [t.replace("...", ell[len(ell) - (len(s) - len(t) + 3):]) for s, t in zip(shapes, terms)]
        rhs = rhs.replace("...", ell)
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        sizes.update(zip(term, shape))
    macs, acc = 0, terms[0]
    for i, term in enumerate(terms[1:], 1):
        later = set(rhs).union(*terms[i + 1:])
        macs += math.prod(sizes[c] for c in set(acc) | set(term))
        acc = "".join(sorted((set(acc) | set(term)) & later))
    return macs


def _recurrent(inputs, outputs) -> int:
    """aten::lstm/gru/rnn_tanh/rnn_relu, padded or packed.

    Every layer and direction runs one step per frame, and a step multiplies the input and the hidden state
    by that layer's weight matrices (4 gates for an LSTM, 3 for a GRU, plus an LSTM's projection), so
    MACs = frames × Σ numel(2-D weights). Frames are all dims of the input but the feature dim: ``T·B``
    for a padded batch, ``sum(batch_sizes)`` (the packed data's length) for a packed sequence.
    """
    frames = math.prod(_shape(inputs[0])[:-1])
    params = [v for v in inputs if str(v.type()) == "List[Tensor]"][-1]  # hx (LSTM) comes before params
    weights = [_shape(w) for w in params.node().inputs()]
    return frames * sum(math.prod(s) for s in weights if len(s) == 2)


def _recurrent_cell(inputs, outputs) -> int:
    """aten::lstm_cell/gru_cell/rnn_tanh_cell(input, hx, w_ih, w_hh, ...): one step for a batch."""
    frames = math.prod(_shape(inputs[0])[:-1]) or 1
    return frames * (math.prod(_shape(inputs[2])) + math.prod(_shape(inputs[3])))


def _sdpa(inputs, outputs) -> int:
    """scaled_dot_product_attention(q (..., L, E), k (..., S, E), v (..., S, Ev)): QKᵀ and A·V."""
    q, k, v = (_shape(t) for t in inputs[:3])
    *batch, length, e = q
    return math.prod(batch) * length * k[-2] * (e + v[-1])


def _native_mha(inputs, outputs) -> int:
    """_native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, ...): the fused
    nn.MultiheadAttention of eval mode without grad: in-projections, attention, out-projection."""
    q, k = _shape(inputs[0]), _shape(inputs[1])
    e = q[-1]
    b, length, s = math.prod(q[:-2]) or 1, q[-2], k[-2]
    return b * (length * e * e + 2 * s * e * e + 2 * length * s * e + length * e * e)


HANDLES: dict[str, Callable] = {
    "aten::_convolution": _conv, "aten::conv1d": _conv_nd, "aten::conv2d": _conv_nd, "aten::conv3d": _conv_nd,
    "aten::linear": _linear, "aten::addmm": _mm_like(1), "aten::mm": _mm_like(0),
    "aten::matmul": _mm_like(0), "aten::bmm": _mm_like(0), "aten::baddbmm": _mm_like(1),
    "aten::einsum": _einsum,
    "aten::lstm": _recurrent, "aten::gru": _recurrent, "aten::rnn_tanh": _recurrent, "aten::rnn_relu": _recurrent,
    "aten::lstm_cell": _recurrent_cell, "aten::gru_cell": _recurrent_cell,
    "aten::rnn_tanh_cell": _recurrent_cell, "aten::rnn_relu_cell": _recurrent_cell,
    "aten::scaled_dot_product_attention": _sdpa,
    "aten::_native_multi_head_attention": _native_mha,
}
# the name each op's MACs are reported under in ``by_op``
_GROUP = {"_convolution": "conv", "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "addmm": "linear",
          "linear": "linear", "mm": "matmul", "matmul": "matmul", "bmm": "matmul", "baddbmm": "matmul",
          "rnn_tanh": "rnn", "rnn_relu": "rnn", "lstm_cell": "lstm", "gru_cell": "gru", "rnn_tanh_cell": "rnn",
          "rnn_relu_cell": "rnn", "scaled_dot_product_attention": "attention",
          "_native_multi_head_attention": "attention"}


def _named(op: str, handle: Callable) -> Callable:
    key = _GROUP.get(op.split("::")[-1], op.split("::")[-1])
    return lambda inputs, outputs: Counter({key: int(handle(inputs, outputs))})


def count_flops_fvcore(module: nn.Module, inputs: tuple | torch.Tensor) -> FlopCount:
    """MACs of ``module(*inputs)`` by tracing with ``torch.jit`` (fvcore), in eval mode without grad; the
    module's mode is restored afterwards."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    analysis = JitModelAnalysis(module, inputs)
    analysis.set_op_handle(**{op: _named(op, h) for op, h in HANDLES.items()})
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about data-dependent shapes (packing)
            by_op = {k: int(v) for k, v in analysis.by_operator().items()}
            unsupported = dict(analysis.unsupported_ops())
    finally:
        module.train(was_training)
    return FlopCount(sum(by_op.values()), by_op, unsupported, counter="fvcore (torch.jit trace)")


def cross_checked(result: FlopCount, module: nn.Module, inputs: tuple | torch.Tensor) -> FlopCount:
    """``result`` (our count of ``module(*inputs)``) with fvcore's total beside it in ``.fvcore_macs``; a model
    the jit tracer cannot follow gets the reason in ``.cross_check_error`` instead: the primary count stands."""
    try:
        return replace(result, fvcore_macs=count_flops_fvcore(module, inputs).macs)
    except Exception as e:
        return replace(result, cross_check_error=f"{type(e).__name__}: {e}")
