"""Multiply-accumulate counts (MACs) of one forward pass, counted at the dispatcher, without TorchScript.

The counter is ``torch.utils.flop_counter.FlopCounterMode`` (a ``TorchDispatchMode``: it sees every aten op
that runs, with its real shapes, whatever Python control flow produced it) with formulas registered for the
ops it counts as zero (:mod:`ocrbench.profile.formulas`: the mkldnn/cuDNN RNN ops, CPU flash attention,
matrix-vector products, the fused attention fast paths). FlopCounterMode counts FLOPs = 2 × MACs; we report
MACs (one fused multiply-add = 1) and ``.flops = 2 × .macs``, as before.

What is counted: convolutions, linear layers, mm/bmm/baddbmm/mv/dot (so matmul and einsum), recurrent layers
and cells (packed sequences included: a packed LSTM on the CPU decomposes into per-step ``addmm``), scaled
dot-product attention (every CPU and CUDA kernel, with or without a mask; the full QKᵀ and A·V even when a
mask or causality skips part of it). Not counted: norms, activations, pooling, softmax, elementwise
arithmetic and bias additions (memory-bound, a few percent at most). Every other op that ran is kept in
:attr:`FlopCount.unsupported_ops` (views and data movement left out); one that looks like matmul work shows
up in :attr:`FlopCount.uncounted_matmul_ops`, and ``strict=True`` makes that an error.

``by_op`` names the work by the outermost torch function that did it (``lstm`` for everything an LSTM runs,
``attention`` for SDPA, ``linear``, ``conv``, ``matmul``, ``einsum``), read by a ``TorchFunctionMode``. That
mode also keeps ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` off their fused fast paths
(they are computed op by op: the same MACs; the fused ops have formulas too).

:func:`ocrbench.profile.fvcore_check.cross_checked` adds fvcore's count (it traces with ``torch.jit``; the
profile runner imports it only when asked): an independent second count, shown when the two differ by more
than 1%. This module never imports it.

Autoregressive models are counted twice (see :func:`model_flops_passes`): teacher-forced, as in a training
step, and per decoded line (greedy decoding of a line of a given length), as in inference. Each model says
which passes to count with its ``flops_passes(images, widths, target_length)`` (the model contract).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..models._base import OCRModel
from .formulas import EXTRA_FORMULAS

# An op whose name matches this carries matmul work; uncounted, it makes a MAC count wrong.
_MATMUL_LIKE = re.compile(r"mm|matmul|conv|linear|lstm|gru|rnn|attention|einsum|bilinear|tensordot|"
                          r"(^|::)(dot|vdot|mv|addmv|inner)$|PythonOp")
CROSS_CHECK_TOLERANCE = 0.01  # fvcore and the dispatch count are shown side by side beyond a 1% difference
COUNTER = "FlopCounterMode (dispatch) + ocrbench formulas"


class UncountedOpError(RuntimeError):
    """An op that carries matmul work ran without a FLOP formula."""


@dataclass(frozen=True)
class FlopCount:
    """MACs of one forward pass.

    Attributes:
        macs: multiply-accumulates of every counted op.
        by_op: MACs per kind of work (``conv``, ``linear``, ``lstm``, ``attention`` ...).
        unsupported_ops: ops that ran without a formula (views and data movement left out), with how often.
        counter: what counted them.
        fvcore_macs: the fvcore count of the same pass, when a cross-check was asked for.
        cross_check_error: why the fvcore count failed, when it did.
    """

    macs: int
    by_op: dict[str, int] = field(default_factory=dict)
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    counter: str = COUNTER
    fvcore_macs: int | None = None
    cross_check_error: str | None = None

    @property
    def flops(self) -> int:
        """Floating-point operations: one multiply-accumulate is two FLOPs."""
        return 2 * self.macs

    @property
    def uncounted_matmul_ops(self) -> dict[str, int]:
        return {op: n for op, n in self.unsupported_ops.items() if _MATMUL_LIKE.search(op)}

    @property
    def cross_check_differs(self) -> bool:
        """Whether fvcore's count differs from this one by more than :data:`CROSS_CHECK_TOLERANCE`."""
        if self.fvcore_macs is None:
            return False
        return abs(self.fvcore_macs - self.macs) > CROSS_CHECK_TOLERANCE * max(self.macs, 1)


# ---------------------------------------------------------------------------------------------- grouping

_FUNCTION_GROUPS = {
    **dict.fromkeys(["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                     "convolution", "_convolution"], "conv"),
    **dict.fromkeys(["linear", "addmm", "bilinear"], "linear"),
    **dict.fromkeys(["matmul", "mm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "vdot", "inner",
                     "tensordot", "chain_matmul", "multi_dot", "__matmul__", "__rmatmul__"], "matmul"),
    "einsum": "einsum",
    **dict.fromkeys(["lstm", "lstm_cell"], "lstm"),
    **dict.fromkeys(["gru", "gru_cell"], "gru"),
    **dict.fromkeys(["rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell"], "rnn"),
    **dict.fromkeys(["scaled_dot_product_attention", "multi_head_attention_forward", "_native_multi_head_attention",
                     "_transformer_encoder_layer_fwd"], "attention"),
}
# the group of an aten op that ran outside any torch function we know (a C++ extension, a custom op)
_OP_GROUPS = {"convolution": "conv", "_convolution": "conv", "cudnn_convolution": "conv",
              "_slow_conv2d_forward": "conv", "addmm": "linear", "mkldnn_rnn_layer": "rnn", "_cudnn_rnn": "rnn",
              "miopen_rnn": "rnn", "_lstm_mps": "lstm"}
# ops that move or make data: left out of ``unsupported_ops`` so that the list shows what was not counted
_DATA_OPS = {"detach", "clone", "copy_", "_to_copy", "cat", "stack", "zeros", "ones", "empty", "full", "arange",
             "scalar_tensor", "lift_fresh", "lift_fresh_copy", "_local_scalar_dense", "zeros_like", "ones_like",
             "empty_like", "full_like", "new_zeros", "new_ones", "new_empty", "new_full", "fill_", "zero_",
             "index_select", "constant_pad_nd", "split", "unsafe_split", "split_with_sizes", "unbind",
             "_pack_padded_sequence", "_pad_packed_sequence", "rand", "randn", "randint", "uniform_", "normal_",
             "contiguous", "empty_strided", "_unsafe_view", "resize_", "set_"}


def _op_group(name: str) -> str:
    if "attention" in name:
        return "attention"
    return _OP_GROUPS.get(name, "matmul")


class _OutermostFunction(TorchFunctionMode):
    """Remembers which torch function is running (``conv2d``, ``lstm`` ...): inside its handler the mode is
    off, so the functions a call makes internally are not seen and the outermost one names the work."""

    def __init__(self):
        super().__init__()
        self.group: str | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        previous, self.group = self.group, _FUNCTION_GROUPS.get(getattr(func, "__name__", ""))
        try:
            return func(*args, **(kwargs or {}))
        finally:
            self.group = previous


class _Ledger(TorchDispatchMode):
    """Entered inside FlopCounterMode: each aten op is handed on to it, and the FLOPs it added are booked
    under the running function's group; an op that added none and has no formula is listed as unsupported."""

    def __init__(self, counter: FlopCounterMode, functions: _OutermostFunction):
        super().__init__()
        self.counter, self.functions = counter, functions
        self.by_group: Counter = Counter()
        self.unsupported: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        before = self.counter.get_total_flops()
        out = func(*args, **(kwargs or {}))
        added = self.counter.get_total_flops() - before
        packet = func._overloadpacket
        name = packet.__name__
        if added:
            self.by_group[self.functions.group or _op_group(name)] += added
        elif packet not in self.counter.flop_registry and not func.is_view and name not in _DATA_OPS:
            self.unsupported[packet._qualified_op_name] += 1
        return out


# ---------------------------------------------------------------------------------------------- API

def count_flops(module: nn.Module, inputs: tuple | torch.Tensor, strict: bool = False) -> FlopCount:
    """MACs of ``module(*inputs)``, run in eval mode without grad (dropout off, batch-norm statistics
    untouched; the module's mode is restored afterwards). No TorchScript: the ops are counted as they run.

    Args:
        module: any ``nn.Module``; its forward may hold any Python control flow.
        inputs: a tensor or a tuple of tensors (or other arguments) passed positionally.
        strict: raise :class:`UncountedOpError` when an op that carries matmul work has no formula.
    Returns:
        A :class:`FlopCount`; ``.macs`` for MACs, ``.flops`` for FLOPs (= 2 × MACs).
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    counter = FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)
    functions = _OutermostFunction()
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), counter, functions:
            ledger = _Ledger(counter, functions)
            with ledger:
                module(*inputs)
    finally:
        module.train(was_training)
    total = counter.get_total_flops()
    result = FlopCount(total // 2, {k: v // 2 for k, v in ledger.by_group.items()}, dict(ledger.unsupported))
    if strict and result.uncounted_matmul_ops:
        raise UncountedOpError(f"ops with matmul work but no FLOP formula: {result.uncounted_matmul_ops}; "
                               "add one in ocrbench/profile/formulas.py")
    return result


def model_flops_passes(model: OCRModel, images: torch.Tensor, widths: torch.Tensor,
                       target_length: int) -> Mapping[str, tuple[nn.Module, tuple]]:
    """The passes whose MACs the profiler reports, as ``{"train": (module, inputs), "infer": (...)}``.

    ``train`` is what one training step runs forward; ``infer`` is what transcribing the batch runs. Both are
    per decoded line of ``target_length`` characters. They are the model's
    :meth:`~ocrbench.models._base.OCRModel.flops_passes`: a CTC model's forward for both; an autoregressive
    model (:mod:`ocrbench.models._seq2seq`) the teacher-forced forward for ``train`` and ``target_length + 1``
    greedy steps for ``infer`` (:class:`TeacherForcedPass`, :class:`GreedyDecodePass`).
    """
    passes = dict(model.flops_passes(images, widths, target_length))
    missing = {"train", "infer"} - set(passes)
    if missing:
        raise ValueError(f"{type(model).__name__}.flops_passes must return the passes {sorted(missing)}")
    return passes
