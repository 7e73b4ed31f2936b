"""Self-test of the premises behind every number ocrbench reports, for a new machine (``ocrbench selftest``).

Each check is a small function returning a :class:`CheckResult` (PASS, WARN, FAIL or SKIP, one line of
detail, the measured values). On a GPU the whole run takes about two minutes; on a CPU the subset that applies
runs in well under a minute with the ``*_tiny`` models, so CI runs it. What is checked:

1. ``dtypes:<model>``: the output dtype of every layer family (conv, linear, rnn, attention, norm) under each
   precision, from forward hooks (and a torch-function mode for ``scaled_dot_product_attention``, which is a
   function, not a module). fp32 must be float32 throughout; under bf16 autocast nothing may come out in
   float16 (cuDNN RNNs are cast to float16 whatever the autocast dtype, unless run outside autocast as
   ``ocrbench.models._blocks.autocast_off`` does). On a CPU bf16 is a dtype-only forward, never timed.
2. ``grad_checkpointing:<model>``: the same loss and gradients with ``set_grad_checkpointing(True)``, dropout
   off and everything else in training mode, then measured again with dropout on.
3. ``resume``: N training steps straight vs N/2, an interruption, and a resume (``train(..., resume=True)``).
4. ``timing_sync`` (CUDA): a host clock without synchronisation measures launches, not work; the harness's
   timing (``ocrbench.profile.timing``) must agree with synchronised wall-clock time.
5. ``peak_memory`` (CUDA): the peak of a tensor of known size is measured exactly, whatever was cached before.
6. ``mfu``: the achieved TFLOP/s of a large bf16 matmul against the peak table (``ocrbench.profile.mfu``).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence
from torch.overrides import TorchFunctionMode
from torch.utils.data import Dataset

from ..harness.callbacks import Callback
from ..records import device_name, environment
from ..runtime import autocast, set_matmul_precision, sync

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
STATUSES = (PASS, WARN, FAIL, SKIP)

# ---- sizes and tolerances (each in one place) ----------------------------------------------------------------
CPU_LINE_WIDTH = 256  # tiny models on a CPU read 64 x 256 lines: the CPU subset stays well under a minute
DTYPE_BATCH = 2
GRAD_BATCH = {"cpu": 2, "cuda": 4}
# Gradients with and without checkpointing: |g_ckpt - g| <= GRAD_RTOL * max|g| + GRAD_ATOL per tensor. The same
# kernels recompute the same values (bit-exact on a CPU, measured for every tiny model); the slack is for GPU
# kernels that add with atomics in a varying order (CTC backward, some cuDNN backward algorithms): a few fp32 ulp.
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-7
RESUME_MODEL = {"cpu": "crnn_tiny", "cuda": "crnn_small"}  # crnn_small: a 2-layer cuDNN LSTM with dropout
RESUME_STEPS = 8  # killed after step RESUME_STEPS // 2 + 1, resumed from the checkpoint at RESUME_STEPS // 2
RESUME_BATCH = 4
# On CUDA resumed weights may differ from a straight run by this much (max |dw| / max |w|) before the check
# fails; a CPU must be bit-exact. A resume that loses its RNG state (dropout, augmentation) differs by 3.4e-3
# (crnn_tiny, measured on a CPU by reseeding after the restore): 30x this tolerance.
RESUME_CUDA_RTOL = 1e-4
MATMUL_N = {"cpu": 1024, "cuda": 8192}  # square matmul size of the timing and MFU checks
MATMUL_ITERS = {"cpu": 5, "cuda": 20}
# Unsynchronised timing must under-report by at least this factor for the check to show synchronisation matters;
# the harness's median must be within HARNESS_TIMING_RTOL of synchronised wall-clock time per step.
SYNC_SPEEDUP_MIN, HARNESS_TIMING_RTOL = 2.0, 0.25
PEAK_MEMORY_BYTES = 256 * 2**20  # a multiple of the caching allocator's 2 MiB rounding: its peak is exact
MFU_RANGE = (0.30, 1.00)  # a large bf16 matmul typically reaches 60-80% of the datasheet peak


@dataclass
class CheckResult:
    """One check: ``status`` is PASS, WARN, FAIL or SKIP; ``measured`` holds the numbers behind it."""

    name: str
    status: str
    detail: str
    measured: dict = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<36} {self.detail}"


# ---- 1. output dtypes per layer family ------------------------------------------------------------------------
FAMILIES: dict[str, tuple[type, ...]] = {
    "conv": (nn.modules.conv._ConvNd,),
    "linear": (nn.Linear, nn.Bilinear),
    "rnn": (nn.RNNBase, nn.RNNCellBase),
    "attention": (nn.MultiheadAttention,),  # plus every F.scaled_dot_product_attention call
    "norm": (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm),
}


def layer_family(module: nn.Module) -> str | None:
    return next((family for family, types in FAMILIES.items() if isinstance(module, types)), None)


def floating_dtypes(output) -> set[torch.dtype]:
    """Dtypes of the floating-point tensors in a module's output (tuples, dicts, packed sequences)."""
    if isinstance(output, PackedSequence):
        return {output.data.dtype}
    if isinstance(output, torch.Tensor):
        return {output.dtype} if output.is_floating_point() else set()
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return set().union(*(floating_dtypes(o) for o in output)) if output else set()
    return set()


class _AttentionCalls(TorchFunctionMode):
    """Records the output dtype of every ``scaled_dot_product_attention`` call (a function: no module hook)."""

    def __init__(self, seen: dict[str, set]):
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is F.scaled_dot_product_attention:
            self.seen.setdefault("attention", set()).update(floating_dtypes(out))
        return out


@contextlib.contextmanager
def record_output_dtypes(model: nn.Module) -> Iterator[dict[str, set]]:
    """Yields ``{family: {dtype, ...}}``, filled while the block runs ``model``."""
    seen: dict[str, set] = {}

    def hook(module, inputs, output):
        seen.setdefault(layer_family(module), set()).update(floating_dtypes(output))

    handles = [m.register_forward_hook(hook) for m in model.modules() if layer_family(m)]
    try:
        with _AttentionCalls(seen):
            yield seen
    finally:
        for h in handles:
            h.remove()


def precision_context(device: torch.device, precision: str):
    """What a run in ``precision`` executes under. On a CPU, bf16 is CPU autocast, for a dtype-only forward:
    the harness refuses it for timing (``ocrbench.runtime.autocast``)."""
    set_matmul_precision(device, precision)
    if device.type == "cpu" and precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return autocast(device, precision)


def dtype_precisions(device: torch.device) -> tuple[str, ...]:
    return ("fp32", "bf16", "fp16") if device.type == "cuda" else ("fp32", "bf16")


def selftest_models(device: torch.device) -> list[str]:
    """Every registered recognizer: the ``*_tiny`` test variants on a CPU, the others on a GPU."""
    from ..models import list_models

    names = list_models(task="recognition")
    tiny = device.type != "cuda"
    return [n for n in names if n.endswith("_tiny") == tiny]


def make_selftest_workload(name: str, device: torch.device):
    """The profiler's synthetic-line workload of ``name`` on ``device`` (short lines on a CPU)."""
    from ..profile import make_workload

    workload = make_workload(name, width=CPU_LINE_WIDTH if device.type == "cpu" else None)
    workload.model.to(device)
    return workload


def forward_dtypes(workload, device: torch.device, precision: str, batch_size: int = DTYPE_BATCH
                   ) -> dict[str, list[str]]:
    """``{family: [dtype names]}`` of a training forward (the loss) and an inference pass in ``precision``."""
    workload.model.train()
    batch = workload.batch(batch_size)
    with torch.no_grad(), record_output_dtypes(workload.model) as seen, precision_context(device, precision):
        workload.loss(batch)
        workload.infer(batch)
    return {family: sorted(str(d).removeprefix("torch.") for d in dtypes) for family, dtypes in seen.items()}


def judge_dtypes(by_precision: dict[str, dict[str, list[str]]]) -> tuple[str, str]:
    """FAIL: fp32 producing anything but float32, or float16 anywhere under bf16 (RNNs especially: no loss
    scaling guards it). WARN: autocast that lowered no conv/linear output, or an RNN not in its stated float32."""
    fails, warns = [], []
    for precision, families in by_precision.items():
        for family, dtypes in families.items():
            if precision == "fp32" and dtypes != ["float32"]:
                fails.append(f"fp32 {family} -> {'/'.join(dtypes)}")
            elif precision == "bf16" and "float16" in dtypes:
                fails.append(f"bf16 {family} -> float16")
            elif precision != "fp32" and family == "rnn" and dtypes != ["float32"]:
                warns.append(f"{precision} rnn -> {'/'.join(dtypes)} (stated: float32)")
        lowered = {d for f in ("conv", "linear") for d in families.get(f, [])} - {"float32"}
        if precision != "fp32" and not lowered:
            warns.append(f"{precision} autocast lowered no conv/linear output")
    if fails:
        return FAIL, "; ".join(fails + warns)
    if warns:
        return WARN, "; ".join(warns)
    return PASS, "; ".join(f"{p}: {dtype_summary(f)}" for p, f in by_precision.items())


SHORT_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "float64": "fp64"}


def dtype_summary(families: dict[str, list[str]]) -> str:
    """``conv/linear bf16, rnn fp32``: the families grouped by their output dtypes."""
    groups: dict[str, list[str]] = {}
    for family in FAMILIES:
        if family in families:
            key = "+".join(SHORT_DTYPES.get(d, d) for d in families[family])
            groups.setdefault(key, []).append(family)
    return ", ".join(f"{'/'.join(names)} {key}" for key, names in groups.items())


def check_dtypes(name: str, device: torch.device) -> CheckResult:
    workload = make_selftest_workload(name, device)
    measured = {p: forward_dtypes(workload, device, p) for p in dtype_precisions(device)}
    status, detail = judge_dtypes(measured)
    return CheckResult(f"dtypes:{name}", status, detail, measured)


# ---- 2. gradients with and without checkpointing --------------------------------------------------------------
_DROPOUT_FUNCTIONS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
                      F.feature_alpha_dropout}


class _NoDropout(TorchFunctionMode):
    """Functional dropout is the identity and attention dropout 0, whatever a module's training flag."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _DROPOUT_FUNCTIONS:
            return args[0] if args else kwargs["input"]
        if func is F.scaled_dot_product_attention:
            if len(args) > 4:
                args = (*args[:4], 0.0, *args[5:])
            else:
                kwargs["dropout_p"] = 0.0
        return func(*args, **kwargs)


@contextlib.contextmanager
def dropout_disabled(model: nn.Module) -> Iterator[None]:
    """Dropout off and everything else in training mode: batch norm normalises with batch statistics, and
    cuDNN RNNs stay in training mode (their backward refuses eval mode), so model.eval() is not an option."""
    rnns = [(m, m.dropout) for m in model.modules() if isinstance(m, nn.RNNBase)]
    for m, _ in rnns:
        m.dropout = 0.0
    try:
        with _NoDropout():
            yield
    finally:
        for m, p in rnns:
            m.dropout = p


def loss_and_grads(model: nn.Module, loss_fn: Callable[[], torch.Tensor], seed: int = 0
                   ) -> tuple[float, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)  # the same dropout masks in both passes (CPU and CUDA generators)
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), grads


def gradient_mismatch(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict:
    """Worst tensor by ``max|Δg| / max|g|``, and the tensors outside ``GRAD_RTOL``/``GRAD_ATOL``."""
    if reference.keys() != other.keys():
        return {"worst": None, "max_rel_diff": math.inf, "outside": sorted(reference.keys() ^ other.keys())}
    worst, rel, outside = None, 0.0, []
    for n, g in reference.items():
        diff, scale = (other[n].float() - g.float()).abs().max().item(), g.float().abs().max().item()
        if diff > GRAD_RTOL * scale + GRAD_ATOL:
            outside.append(n)
        r = diff / scale if scale else (0.0 if diff == 0 else math.inf)
        if r > rel or worst is None:
            worst, rel = n, r
    return {"worst": worst, "max_rel_diff": rel, "outside": outside}


def _batchnorm_counts(model: nn.Module) -> list[int]:
    return [int(m.num_batches_tracked) for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.num_batches_tracked is not None]


def checkpointing_comparison(model: nn.Module, loss_fn: Callable[[], torch.Tensor], dropout: bool) -> dict:
    """One training forward/backward without, then with, gradient checkpointing, from the same weights, batch
    norm statistics and RNG seed. Returns the gradient mismatch, the loss difference and the batch-norm updates
    per step under checkpointing (recomputation runs batch norm's forward, and its statistics update, again)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    before = _batchnorm_counts(model)
    with contextlib.nullcontext() if dropout else dropout_disabled(model):
        loss, grads = loss_and_grads(model, loss_fn)
        model.load_state_dict(state)
        model.set_grad_checkpointing(True)
        try:
            loss_ckpt, grads_ckpt = loss_and_grads(model, loss_fn)
            after = _batchnorm_counts(model)
        finally:
            model.set_grad_checkpointing(False)
            model.load_state_dict(state)
    updates = max((a - b for a, b in zip(after, before)), default=0)
    return {**gradient_mismatch(grads, grads_ckpt), "loss_diff": abs(loss_ckpt - loss),
            "batchnorm_updates_per_step": updates}


def judge_checkpointing(off: dict, on: dict) -> tuple[str, str]:
    """FAIL: gradients differ with dropout off. WARN: they differ only with dropout on (the recomputation drew
    other dropout masks, e.g. a cuDNN RNN's own dropout state)."""
    tol = f"tolerance {GRAD_RTOL:g}·max|g| + {GRAD_ATOL:g}"
    bn = (f"; batch-norm stats updated {on['batchnorm_updates_per_step']}x per step"
          if on["batchnorm_updates_per_step"] > 1 else "")
    if off["outside"]:
        return FAIL, (f"dropout off: gradients differ ({len(off['outside'])} tensors outside {tol}; worst "
                      f"{off['worst']}: {off['max_rel_diff']:.2g} of max|g|)")
    if on["outside"]:
        return WARN, (f"equal with dropout off; with dropout on {len(on['outside'])} tensors differ (worst "
                      f"{on['worst']}: {on['max_rel_diff']:.2g}): recomputation redraws dropout masks{bn}")
    return PASS, f"max |Δg| {off['max_rel_diff']:.2g}·max|g| ({tol}), dropout on too{bn}"


def check_grad_checkpointing(name: str, device: torch.device) -> CheckResult:
    workload = make_selftest_workload(name, device)
    model = workload.model.train()
    set_matmul_precision(device, "fp32")  # no TF32: the tolerance is an fp32 one
    batch = workload.batch(GRAD_BATCH[device.type])
    off = checkpointing_comparison(model, lambda: workload.loss(batch), dropout=False)
    on = checkpointing_comparison(model, lambda: workload.loss(batch), dropout=True)
    status, detail = judge_checkpointing(off, on)
    return CheckResult(f"grad_checkpointing:{name}", status, detail, {"dropout_off": off, "dropout_on": on})


# ---- 3. resume ------------------------------------------------------------------------------------------------
class NoiseLines(Dataset):
    """Random ink and random labels of a fixed length: data for a training run whose weights are compared."""

    def __init__(self, n: int, height: int, width: int, chars: str, length: int, seed: int = 0):
        from ..data.samples import LineSample

        rng = np.random.default_rng(seed)
        alphabet = [c for c in chars if not c.isspace()]
        self.samples = [LineSample(rng.integers(0, 256, (height, width), dtype=np.uint8),
                                   "".join(rng.choice(alphabet, length))) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i]


class _Interrupted(Exception):
    """Stands for a killed process in the resume check."""


class _InterruptAt(Callback):
    """Ends a training run at ``step``: the kill of an interrupted run."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, model, state, loss, lr) -> None:
        if state.step == self.step:
            raise _Interrupted(f"interrupted at step {self.step}")


def _train_run(name: str, data: Dataset, cfg, out: Path, init_seed: int, resume: bool = False,
               interrupt_at: int | None = None) -> dict | None:
    """The weights and the step resumed from of one training run; None when it was interrupted."""
    from ..harness.train import train
    from ..models import create_model

    torch.manual_seed(init_seed)
    model = create_model(name)
    callbacks = [_InterruptAt(interrupt_at)] if interrupt_at else []
    try:
        result = train(model, data, cfg, out, config_hash="selftest", resume=resume, progress=False,
                       callbacks=callbacks)
    except _Interrupted:
        return None
    return {"weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "resumed_from": result.resumed_from}


def weight_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict:
    """``max|Δw| / max|w|`` over every floating tensor of two state dicts, and how many tensors differ."""
    diffs = [(a[k].float() - b[k].float()).abs().max().item() for k in a if a[k].is_floating_point()]
    scale = max(a[k].float().abs().max().item() for k in a if a[k].is_floating_point())
    differing = sum(not torch.equal(a[k], b[k]) for k in a)
    return {"max_rel_diff": max(diffs) / scale, "tensors_differing": differing, "tensors": len(a)}


def resume_weights(device: torch.device, name: str, steps: int = RESUME_STEPS, repeat_straight: bool = False
                   ) -> dict[str, dict | None]:
    """Runs of :func:`_train_run`: ``steps`` straight, one interrupted after step ``steps // 2 + 1`` (None when
    it was), its resumption, and (``repeat_straight``) a second straight run: the device's own noise."""
    from ..config import TrainConfig
    from ..models import create_model

    probe = create_model(name)
    height = probe.info.input_height
    length = 4
    width = max(probe.min_input_width(length), 2 * height)
    data = NoiseLines(4 * RESUME_BATCH, height, width, probe.charset.chars, length)
    cfg = TrainConfig(steps=steps, batch_size=RESUME_BATCH, checkpoint_every=steps // 2, device=str(device),
                      precision="fp32", seed=0)
    with tempfile.TemporaryDirectory(prefix="ocrbench-selftest-") as tmp:
        out = {"straight": _train_run(name, data, cfg, Path(tmp) / "straight", init_seed=0)}
        out["interrupted"] = _train_run(name, data, cfg, Path(tmp) / "resumed", init_seed=0,
                                        interrupt_at=steps // 2 + 1)
        # another initialisation: everything must come from the checkpoint
        out["resumed"] = _train_run(name, data, cfg, Path(tmp) / "resumed", init_seed=123, resume=True)
        if repeat_straight:
            out["again"] = _train_run(name, data, cfg, Path(tmp) / "again", init_seed=0)
    return out


def judge_resume(device_type: str, resumed: dict, noise: dict | None) -> tuple[str, str]:
    """CPU: bit-exact. CUDA: within ``RESUME_CUDA_RTOL``; beyond it a WARN when two straight runs already
    differ that much (the device is not deterministic), else FAIL."""
    what = f"{resumed['tensors_differing']}/{resumed['tensors']} tensors differ, max {resumed['max_rel_diff']:.2g}"
    if device_type != "cuda":
        if resumed["tensors_differing"]:
            return FAIL, f"resumed weights are not bit-exact: {what} of max|w|"
        return PASS, f"bit-exact ({resumed['tensors']} tensors)"
    noise_text = f"; two straight runs: {noise['max_rel_diff']:.2g}" if noise else ""
    if resumed["max_rel_diff"] <= RESUME_CUDA_RTOL:
        return PASS, f"within {RESUME_CUDA_RTOL:g} of max|w| ({what}{noise_text})"
    if noise and noise["max_rel_diff"] > RESUME_CUDA_RTOL:
        return WARN, f"not reproducible even without resume ({what}{noise_text}): nondeterministic kernels"
    return FAIL, f"resume changes the weights: {what} of max|w| (tolerance {RESUME_CUDA_RTOL:g}{noise_text})"


def check_resume(device: torch.device, name: str | None = None) -> CheckResult:
    name = name or RESUME_MODEL[device.type]
    runs = resume_weights(device, name, repeat_straight=device.type == "cuda")
    if runs["interrupted"] is not None or runs["resumed"]["resumed_from"] != RESUME_STEPS // 2:
        return CheckResult("resume", FAIL, f"the run was not interrupted and resumed at step {RESUME_STEPS // 2} "
                                           f"(resumed from {runs['resumed']['resumed_from']})")
    resumed = weight_difference(runs["straight"]["weights"], runs["resumed"]["weights"])
    noise = weight_difference(runs["straight"]["weights"], runs["again"]["weights"]) if "again" in runs else None
    status, detail = judge_resume(device.type, resumed, noise)
    measured = {"model": name, "steps": RESUME_STEPS, "resumed_from": RESUME_STEPS // 2, "resumed": resumed,
                "straight_vs_straight": noise}
    detail = f"{name}, {RESUME_STEPS} steps vs {RESUME_STEPS // 2} + resume: {detail}"
    return CheckResult("resume", status, detail, measured)


# ---- 4-6. timing, memory, MFU ---------------------------------------------------------------------------------
def _matmul_step(device: torch.device, n: int, dtype: torch.dtype) -> Callable[[], torch.Tensor]:
    """``c = a @ b`` into a preallocated ``c``: one kernel per call, no allocation in the timed loop."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))  # made on the device: no host copy
    c = torch.empty(n, n, device=device, dtype=dtype)
    return lambda: torch.mm(a, b, out=c)


def measure_sync_timing(device: torch.device, n: int, iters: int) -> dict:
    """Seconds per matmul by a host clock without synchronisation, with ``runtime.sync`` after the loop, and by
    the harness's ``time_steps`` (CUDA events)."""
    from ..profile.timing import time_steps

    step = _matmul_step(device, n, torch.bfloat16 if device.type == "cuda" else torch.float32)
    for _ in range(3):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    unsynced = (time.perf_counter() - t0) / iters
    sync(device)
    synced = (time.perf_counter() - t0) / iters
    harness = time_steps(step, device, warmup=2, iters=iters).median
    return {"n": n, "iters": iters, "unsynced_s": unsynced, "synced_s": synced, "harness_median_s": harness}


def judge_sync_timing(m: dict) -> tuple[str, str]:
    """FAIL: the harness disagrees with synchronised time. WARN: launches are synchronous (unsynchronised time
    is not far smaller, e.g. CUDA_LAUNCH_BLOCKING=1), so this run cannot show that synchronising matters."""
    speedup = m["synced_s"] / m["unsynced_s"] if m["unsynced_s"] else math.inf
    agreement = m["harness_median_s"] / m["synced_s"] - 1
    text = (f"per matmul: unsynchronised {m['unsynced_s'] * 1e3:.3g} ms, "
            f"synchronised {m['synced_s'] * 1e3:.3g} ms, harness {m['harness_median_s'] * 1e3:.3g} ms")
    if abs(agreement) > HARNESS_TIMING_RTOL:
        return FAIL, f"harness timing is off by {agreement:+.0%}: {text}"
    if speedup < SYNC_SPEEDUP_MIN:
        return WARN, f"unsynchronised only {speedup:.1f}x faster (launches block?): {text}"
    return PASS, f"unsynchronised {speedup:.0f}x too fast; harness within {agreement:+.0%}: {text}"


def check_timing_sync(device: torch.device) -> CheckResult:
    if device.type != "cuda":
        return CheckResult("timing_sync", SKIP, "CPU ops run synchronously: a host clock measures the work itself")
    m = measure_sync_timing(device, MATMUL_N["cuda"], MATMUL_ITERS["cuda"])
    return CheckResult("timing_sync", *judge_sync_timing(m), m)


def measure_peak_memory(device: torch.device, nbytes: int = PEAK_MEMORY_BYTES) -> dict:
    """Peak allocated and reserved bytes of one ``nbytes`` tensor, measured by the profiler's
    ``cuda_peak_memory`` after a larger block was freed into the cache (a measurement that did not empty the
    cache would carve the tensor from that block and report no new reservation)."""
    from ..profile.memory import cuda_peak_memory

    leftover = torch.empty(2 * nbytes, dtype=torch.uint8, device=device)
    del leftover
    with cuda_peak_memory(device) as peak:
        base_allocated, base_reserved = torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device)
        tensor = torch.ones(nbytes, dtype=torch.uint8, device=device)
        del tensor
    return {"nbytes": nbytes, "allocated": peak["allocated"] - base_allocated,
            "reserved": peak["reserved"] - base_reserved}


def judge_peak_memory(m: dict) -> tuple[str, str]:
    """FAIL: the allocated peak is not the tensor's size. WARN: the reserved peak is not (allocator settings
    such as expandable segments, or cached blocks of earlier work counted)."""
    mib = lambda b: f"{b / 2**20:.1f} MiB"  # noqa: E731
    text = f"tensor {mib(m['nbytes'])}: peak allocated {mib(m['allocated'])}, reserved {mib(m['reserved'])}"
    if m["allocated"] != m["nbytes"]:
        return FAIL, f"peak allocated is not exact: {text}"
    if m["reserved"] != m["nbytes"]:
        return WARN, f"peak reserved depends on the cache: {text}"
    return PASS, f"exact: {text}"


def check_peak_memory(device: torch.device) -> CheckResult:
    if device.type != "cuda":
        return CheckResult("peak_memory", SKIP, "no CUDA allocator on a CPU (the profiler counts saved activations)")
    m = measure_peak_memory(device)
    return CheckResult("peak_memory", *judge_peak_memory(m), m)


def measure_matmul_flops(device: torch.device, n: int, iters: int) -> dict:
    """Achieved FLOP/s of an ``n``-square matmul (bf16 on CUDA, fp32 on a CPU), timed by the harness."""
    from ..profile.timing import time_steps

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    stats = time_steps(_matmul_step(device, n, dtype), device, warmup=3, iters=iters)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "median_s": stats.median,
            "flops_per_s": 2 * n**3 / stats.median}


def judge_mfu(achieved: float, peak: float | None, device: str) -> tuple[str, str]:
    """WARN when the device is not in the peak table or the achieved fraction is outside ``MFU_RANGE``."""
    text = f"{achieved / 1e12:.1f} TFLOP/s"
    if peak is None:
        return WARN, f"{text}; {device!r} is not in ocrbench/profile/mfu.py PEAKS: MFU will be n/a"
    share, (low, high) = achieved / peak, MFU_RANGE
    text += f" = {share:.0%} of the {peak / 1e12:.0f} TFLOP/s bf16 peak"
    if share < low:
        return WARN, f"{text}: below {low:.0%} (wrong table row, clocks throttled, or a busy GPU?)"
    if share > high:
        return WARN, f"{text}: above the peak, so the table's peak is too low"
    return PASS, text


def check_mfu(device: torch.device) -> CheckResult:
    from ..profile.mfu import peak_flops

    m = measure_matmul_flops(device, MATMUL_N[device.type], MATMUL_ITERS[device.type])
    if device.type != "cuda":
        return CheckResult("mfu", SKIP, f"fp32 matmul {m['flops_per_s'] / 1e9:.1f} GFLOP/s; the peak table "
                                        f"covers GPUs only", m)
    name = device_name(device)
    peak = peak_flops(name, "bf16")
    m.update(device_name=name, peak_flops_per_s=peak, mfu=m["flops_per_s"] / peak if peak else None)
    return CheckResult("mfu", *judge_mfu(m["flops_per_s"], peak, name), m)


# ---- running them ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedCheck:
    name: str
    run: Callable[[], CheckResult]


def plan_checks(device: torch.device) -> list[PlannedCheck]:
    """The checks for ``device``, in order; the CUDA-only ones are planned on a CPU too and SKIP there."""
    models = selftest_models(device)
    plan = [PlannedCheck(f"dtypes:{n}", lambda n=n: check_dtypes(n, device)) for n in models]
    plan += [PlannedCheck(f"grad_checkpointing:{n}", lambda n=n: check_grad_checkpointing(n, device))
             for n in models]
    plan += [PlannedCheck("resume", lambda: check_resume(device)),
             PlannedCheck("timing_sync", lambda: check_timing_sync(device)),
             PlannedCheck("peak_memory", lambda: check_peak_memory(device)),
             PlannedCheck("mfu", lambda: check_mfu(device))]
    return plan


def run_check(check: PlannedCheck) -> CheckResult:
    """Run one check; NotImplementedError (a mode a model lacks) is a SKIP, any other error that check's FAIL."""
    t0 = time.perf_counter()
    try:
        result = check.run()
    except NotImplementedError as e:
        result = CheckResult(check.name, SKIP, f"n/a: {e}")
    except Exception as e:  # one broken check must not hide the others' results
        result = CheckResult(check.name, FAIL, f"{type(e).__name__}: {e}", {"traceback": traceback.format_exc()})
    result.seconds = round(time.perf_counter() - t0, 2)
    return result


def run_selftest(device: torch.device, on_result: Callable[[CheckResult], None] | None = None,
                 plan: list[PlannedCheck] | None = None) -> dict:
    """Run every planned check on ``device``; returns the report (environment stamp, checks, counts)."""
    results = []
    for check in plan if plan is not None else plan_checks(device):
        results.append(run_check(check))
        if device.type == "cuda":  # each check starts from an empty cache, whatever the last one left
            torch.cuda.empty_cache()
        if on_result:
            on_result(results[-1])
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    return {"kind": "selftest", **environment(device),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "checks": [asdict(r) for r in results], "counts": counts, "failed": counts[FAIL] > 0,
            "seconds": round(sum(r.seconds for r in results), 1)}


def format_report(report: dict) -> str:
    lines = [CheckResult(**c).line() for c in report["checks"]]
    counts = ", ".join(f"{n} {s}" for s, n in report["counts"].items() if n)
    lines.append(f"{counts} in {report['seconds']:.0f} s on {report['device_name']} (torch {report['torch']}"
                 + (f", CUDA {report['cuda']}" if report.get("cuda") else "") + ")")
    return "\n".join(lines)
