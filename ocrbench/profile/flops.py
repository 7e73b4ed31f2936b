"""Multiply-accumulate counts (MACs) of one forward pass, with handles for the ops fvcore leaves at zero.

fvcore's ``FlopCountAnalysis`` traces the model with ``torch.jit`` and calls a handle per op; its numbers are
MACs (one fused multiply-add = 1) although it calls them "flops". It has no handle for ``aten::lstm``,
``aten::gru`` or attention, so a CRNN or a Transformer comes out far too cheap. Here every op that does
matmul work has a handle; FLOPs are ``2 × MACs``.

What is counted: convolutions, linear layers, mm/bmm/baddbmm/matmul/einsum, recurrent layers and cells
(packed sequences included), scaled-dot-product attention and the fused ``nn.MultiheadAttention`` fast
path (``TransformerEncoderLayer``'s own fast path is never taken under the tracer: fvcore's scope hooks
disable it, so its attention and feed-forward are traced op by op). Not counted: norms, activations, pooling, softmax, elementwise
arithmetic and bias additions (memory-bound, a few percent at most; fvcore's default counts batch norm, we do
not). Every op without a handle is kept in :attr:`FlopCount.unsupported_ops`; one that looks like matmul work
shows up in :attr:`FlopCount.uncounted_matmul_ops`, and ``strict=True`` makes that an error.

Autoregressive models are counted twice (see :func:`model_flops_passes`): teacher-forced, as in a training
step, and per decoded line (greedy decoding of a line of a given length), as in inference. A model can
override both with a ``flops_passes(images, widths, target_length)`` method.
"""

from __future__ import annotations

import math
import re
import string
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

with warnings.catch_warnings():  # fvcore's import scripts a loss with torch.jit.script, deprecated in torch 2.10+
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn.jit_analysis import JitModelAnalysis
    from fvcore.nn.jit_handles import conv_flop_count, get_shape

# An op whose name matches this carries matmul work; uncounted, it makes a MAC count wrong.
_MATMUL_LIKE = re.compile(r"mm|matmul|conv|linear|lstm|gru|rnn|attention|einsum|bilinear|tensordot|"
                          r"(^|::)(dot|mv|addmv|inner)$|PythonOp")


class UncountedOpError(RuntimeError):
    """A traced op that carries matmul work has no MAC handle."""


@dataclass(frozen=True)
class FlopCount:
    """MACs of one forward pass.

    Attributes:
        macs: multiply-accumulates of every counted op (fvcore would call this "flops").
        by_op: MACs per op kind (``conv``, ``linear``, ``lstm``, ``attention`` ...).
        unsupported_ops: ops that were traced but have no handle, with how often they ran.
    """

    macs: int
    by_op: dict[str, int] = field(default_factory=dict)
    unsupported_ops: dict[str, int] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        """Floating-point operations: one multiply-accumulate is two FLOPs."""
        return 2 * self.macs

    @property
    def uncounted_matmul_ops(self) -> dict[str, int]:
        return {op: n for op, n in self.unsupported_ops.items() if _MATMUL_LIKE.search(op)}


# ---------------------------------------------------------------------------------------------- handles
# Each handle gets the jit values of one op's inputs and outputs and returns its MACs.

def _shape(value) -> list[int]:
    shape = get_shape(value)
    if shape is None:
        raise UncountedOpError(f"the tracer recorded no shape for {value.debugName()} ({value.type()})")
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


# ---------------------------------------------------------------------------------------------- API

def count_flops(module: nn.Module, inputs: tuple | torch.Tensor, strict: bool = False) -> FlopCount:
    """MACs of ``module(*inputs)``, traced in eval mode without grad (dropout off, batch-norm statistics
    untouched; the module's mode is restored afterwards).

    Args:
        module: any ``nn.Module`` whose forward the jit tracer can follow.
        inputs: a tensor or a tuple of tensors passed positionally.
        strict: raise :class:`UncountedOpError` when an op that carries matmul work has no handle.
    Returns:
        A :class:`FlopCount`; ``.macs`` for MACs, ``.flops`` for FLOPs (= 2 × MACs).
    """
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
    result = FlopCount(sum(by_op.values()), by_op, unsupported)
    if strict and result.uncounted_matmul_ops:
        raise UncountedOpError(f"ops with matmul work but no MAC handle: {result.uncounted_matmul_ops}; "
                               "add a handle in ocrbench/profile/flops.py")
    return result


SEQ2SEQ_CONTRACT = ("encode", "teacher_forcing", "init_state", "decode_step")


def is_autoregressive(model: nn.Module) -> bool:
    """Whether ``model`` follows the encoder-decoder contract of :mod:`ocrbench.models.seq2seq`."""
    return all(callable(getattr(model, m, None)) for m in SEQ2SEQ_CONTRACT) and hasattr(model, "bos")


class TeacherForcedPass(nn.Module):
    """What an autoregressive model's training step runs forward: the encoder, then the decoder over
    ``length + 1`` teacher-forced positions (``[start, y_1 .. y_L]`` predicting ``[y_1 .. y_L, end]``)."""

    def __init__(self, model: nn.Module, length: int):
        super().__init__()
        self.model, self.length = model, length

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        memory = self.model.encode(images, widths)
        inputs = torch.ones(images.shape[0], self.length + 1, dtype=torch.long, device=images.device)
        inputs[:, 0] = self.model.bos
        return self.model.teacher_forcing(memory, inputs)


class GreedyDecodePass(nn.Module):
    """What transcribing runs: the encoder, then ``length + 1`` greedy decoder steps (``length`` characters
    and the end token) whatever the tokens are, so the cost is that of a line of ``length`` characters and
    does not depend on when an untrained model happens to emit the end token."""

    def __init__(self, model: nn.Module, length: int):
        super().__init__()
        self.model, self.length = model, length

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        memory = self.model.encode(images, widths)
        state = self.model.init_state(memory)
        tokens = torch.full((images.shape[0],), self.model.bos, dtype=torch.long, device=images.device)
        steps = []
        for _ in range(self.length + 1):
            logits, state = self.model.decode_step(tokens, state, memory)
            tokens = logits.argmax(-1)
            steps.append(tokens)
        return torch.stack(steps, 1)


def model_flops_passes(model: nn.Module, images: torch.Tensor, widths: torch.Tensor,
                       target_length: int) -> Mapping[str, tuple[nn.Module, tuple]]:
    """The passes whose MACs the profiler reports, as ``{"train": (module, inputs), "infer": (...)}``.

    ``train`` is what one training step runs forward; ``infer`` is what transcribing the batch runs. Both are
    per decoded line of ``target_length`` characters. A CTC model's forward is both. An autoregressive model
    (the encoder-decoder contract of :mod:`ocrbench.models.seq2seq`) gets the teacher-forced forward for
    ``train`` and ``target_length + 1`` greedy steps for ``infer`` (:class:`TeacherForcedPass`,
    :class:`GreedyDecodePass`). Any model can override this by defining
    ``flops_passes(images, widths, target_length)`` returning the same mapping; a returned module may be a
    small wrapper whose ``forward`` runs a decoding loop (the tracer unrolls it).
    """
    hook = getattr(model, "flops_passes", None)
    if callable(hook):
        passes = dict(hook(images, widths, target_length))
        missing = {"train", "infer"} - set(passes)
        if missing:
            raise ValueError(f"{type(model).__name__}.flops_passes must return the passes {sorted(missing)}")
        return passes
    if is_autoregressive(model):
        return {"train": (TeacherForcedPass(model, target_length), (images, widths)),
                "infer": (GreedyDecodePass(model, target_length), (images, widths))}
    return {"train": (model, (images, widths)), "infer": (model, (images, widths))}
