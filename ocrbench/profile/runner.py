"""Profile models: MACs, step time, throughput, memory and MFU, one row per (model, setting).

Method (the README's "Measurement" section): a fixed input shape per row, synthetic data built before the
timed region, ``warmup`` untimed steps, then ``iters`` timed steps (CUDA events per step, one synchronize at
the end; ``perf_counter`` on the CPU); the row reports the median step time, its interquartile range and
samples/s = batch size / median. An inference step is ``predict`` (forward + greedy decoding) under
``inference_mode``; a training step is the recipe's: forward, loss, backward, gradient clipping, AdamW step
(with a GradScaler for fp16 only). On CUDA out-of-memory the batch size is backed off and the row records
the batch size that ran. Any other failure becomes that row's ``error``; the other rows still run.

A spec may also ask for a batch sweep (:mod:`ocrbench.profile.batch_sweep`: the row is measured at the
throughput-optimal batch and records the latency at batch 1 and every point) and for ``torch.compile``
(:mod:`ocrbench.profile.compiled`: the compiled step's throughput and compile time beside the eager ones, at
the same batch). MACs are counted once per model, eagerly, at the dispatcher (:mod:`ocrbench.profile.flops`).
"""

from __future__ import annotations

import contextlib
import gc
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import torch

from ..config import PRECISIONS, TrainConfig
from ..errors import UserError
from ..records import environment
from ..runtime import autocast, is_out_of_memory, resolve_device, set_matmul_precision
from .batch_sweep import SWEEP_MAX_BATCH, smaller_batch, sweep_batch_sizes
from .compiled import COMPILE_MODES, time_compiled
from .flops import FlopCount, count_flops
from .memory import MIB, cuda_peak_memory, release_cached_memory, saved_activation_bytes
from .mfu import mfu, peak_flops
from .timing import time_steps
from .workloads import TIMM_PREFIX, RecognizerWorkload, Workload, make_workload

MODES = ("infer", "train")
CPU_AUTOCAST_NA = "bf16/fp16 autocast is not timed on a CPU (LSTMs fail or run ~75x slower there)"


@dataclass(frozen=True)
class ProfileSpec:
    """One measured setting. ``warmup``/``iters`` default to the documented method (≥10, ≥40);
    ``max_seconds`` stops timing early once ``min_iters`` steps are done (cheap CPU profiles).
    ``compile``: a ``torch.compile`` mode to time beside eager (``None``: eager only). ``sweep``: find the
    throughput-optimal batch by doubling from 1 up to ``max_batch`` (``batch_size`` is then unused)."""

    mode: str = "infer"
    batch_size: int = 32
    precision: str = "fp32"
    channels_last: bool = False
    grad_checkpointing: bool = False
    warmup: int = 10
    iters: int = 40
    max_seconds: float | None = None
    min_iters: int = 5
    compile: str | None = None
    sweep: bool = False
    max_batch: int = SWEEP_MAX_BATCH
    data_share: str | None = None  # training rows: also measure the data-loading share on this suite's data
    data_workers: int | str | None = None  # its DataLoader workers (None: the suite's train.num_workers)

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.batch_size < 1 or self.iters < 1 or self.warmup < 0 or self.max_batch < 1:
            raise UserError("batch size, max batch and iters must be >= 1 and warmup >= 0")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise UserError(f"compile mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile!r}")


def expand_models(patterns: Iterable[str]) -> list[str]:
    """``all`` (every recognizer but the ``*_tiny`` test variants), shell wildcards over the registry,
    exact registry names, or ``timm:NAME``; unknown names are an error listing close matches."""
    from ..models import list_models, model_task

    names: list[str] = []
    for pattern in patterns:
        if pattern == "all":
            found = [n for n in list_models(task="recognition") if not n.endswith("_tiny")]
        elif pattern.startswith(TIMM_PREFIX):
            found = [pattern]
        elif any(c in pattern for c in "*?["):
            found = list_models(pattern, task="recognition")
            if not found:
                raise UserError(f"no recognizer matches {pattern!r} (see `ocrbench list models`)")
        else:
            model_task(pattern)  # raises UnknownNameError with close matches
            found = [pattern]
        names += [n for n in found if n not in names]
    return names


def profile_model(name: str, specs: Iterable[ProfileSpec], device: str = "auto", height: int | None = None,
                  width: int | None = None, charset=None, model_kwargs: dict | None = None,
                  count_macs: bool = True, cross_check_flops: bool = False,
                  recipe: TrainConfig | None = None) -> list[dict]:
    """Profile one model under each of ``specs``; returns one row (dict) per spec, failures included.
    ``cross_check_flops`` also counts MACs with fvcore (``torch.jit``) and records both. ``recipe``: the
    training recipe of the timed training steps (default: ``TrainConfig()``; a suite passes its own)."""
    specs = list(specs)
    dev = resolve_device(device)
    try:
        workload = make_workload(name, height, width, charset, model_kwargs)
        if recipe is not None:
            workload.recipe = recipe
    except Exception as e:  # a model that cannot even be built: every row says why
        return [_error_row({"model": name, **_spec_fields(s), **environment(dev)}, e) for s in specs]
    macs = _macs_fields(workload, cross_check_flops) if count_macs else {}
    workload.model.to(dev)
    return [_profile_row(workload, spec, dev, macs) for spec in specs]


def profile_many(names: Iterable[str], specs: Iterable[ProfileSpec], **kwargs) -> list[dict]:
    specs = list(specs)
    rows = []
    for name in names:
        rows += profile_model(name, specs, **kwargs)
    return rows


CPU_SUITE_BATCH = 4  # lines per step when a suite profiles on a CPU (per-line speed barely depends on it)


def suite_profile(name: str, train: TrainConfig, height: int, charset=None, model_kwargs: dict | None = None
                  ) -> list[dict]:
    """The profile a suite runs after training a model, at the reference shape: inference, and a training
    step with and without gradient checkpointing, in the suite's precision (plus fp32 on CUDA). On CUDA the
    recipe's batch sizes and the full method; on a CPU it is cut to about a second per row (batch of
    ``CPU_SUITE_BATCH``, 1 warm-up step, timing stops after 0.3 s and >= 2 steps); rows record what ran."""
    dev = resolve_device(train.device)
    batches = (train.eval_batch_size, train.batch_size)
    budget: dict = {}
    if dev.type == "cpu":
        batches = tuple(min(b, CPU_SUITE_BATCH) for b in batches)
        budget = dict(warmup=1, max_seconds=0.3, min_iters=2)
    precisions = [train.precision] + (["fp32"] if dev.type == "cuda" and train.precision != "fp32" else [])
    specs = []
    for p in precisions:
        specs += [ProfileSpec("infer", batches[0], p, **budget),
                  ProfileSpec("train", batches[1], p, grad_checkpointing=False, **budget),
                  ProfileSpec("train", batches[1], p, grad_checkpointing=True, **budget)]
    return profile_model(name, specs, device=train.device, height=height, charset=charset,
                         model_kwargs=model_kwargs, recipe=train)


# ---------------------------------------------------------------------------------------------- rows

def _spec_fields(spec: ProfileSpec) -> dict:
    fields = ("mode", "precision", "channels_last", "grad_checkpointing")
    requested = "sweep" if spec.sweep else spec.batch_size
    return {"kind": "profile", **{k: getattr(spec, k) for k in fields}, "batch_size_requested": requested}


def _error_row(base: dict, e: BaseException) -> dict:
    return {**base, "status": "error", "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(limit=4)}


def _macs_fields(workload: Workload, cross_check: bool = False) -> dict:
    """MACs per sample (line) of the training forward and of inference, at the workload's shape."""
    try:
        passes = workload.flops_passes()
        train = _count_macs(*passes["train"], cross_check)
        same = passes["train"][0] is passes["infer"][0] and all(
            a is b for a, b in zip(passes["train"][1], passes["infer"][1], strict=True))
        infer = train if same else _count_macs(*passes["infer"], cross_check)
    except Exception as e:  # a model whose forward fails: the row still gets its timings
        return {"macs_error": f"{type(e).__name__}: {e}"}
    out = {"macs_per_line_train": train.macs, "macs_per_line_infer": infer.macs,
           "flops_per_line_train": train.flops, "flops_per_line_infer": infer.flops,
           "macs_by_op": infer.by_op, "macs_counter": infer.counter,
           "macs_basis": "forward" if same else "train: teacher-forced forward; infer: greedy decoding",
           "unsupported_ops": {**train.unsupported_ops, **infer.unsupported_ops},
           "uncounted_matmul_ops": {**train.uncounted_matmul_ops, **infer.uncounted_matmul_ops}}
    if cross_check:
        out.update(_cross_check_fields(train, infer))
    return out


def _count_macs(module, inputs: tuple, cross_check: bool) -> FlopCount:
    """Our MAC count of one pass; with ``cross_check``, fvcore's beside it (imported only then: it traces with
    ``torch.jit``, and fvcore is an optional dependency, whose absence is recorded, not raised)."""
    result = count_flops(module, inputs)
    if not cross_check:
        return result
    try:
        from .fvcore_check import cross_checked
    except ImportError as e:
        return replace(result, cross_check_error=f"{type(e).__name__}: {e}")
    return cross_checked(result, module, inputs)


def _cross_check_fields(train, infer) -> dict:
    """fvcore's counts beside ours; ``macs_cross_check`` says so in words when they differ by more than 1%."""
    out = {"fvcore_macs_per_line_train": train.fvcore_macs, "fvcore_macs_per_line_infer": infer.fvcore_macs}
    errors = {e for e in (train.cross_check_error, infer.cross_check_error) if e}
    if errors:
        out["macs_cross_check"] = "fvcore failed: " + "; ".join(sorted(errors))
    passes = [("forward", train)] if train is infer else [("train", train), ("infer", infer)]
    differs = [(m, c) for m, c in passes if c.cross_check_differs]
    if differs:
        out["macs_cross_check"] = "; ".join(f"{m}: fvcore {c.fvcore_macs:,} MACs vs {c.macs:,} "
                                            f"({c.fvcore_macs / max(c.macs, 1) - 1:+.1%})" for m, c in differs)
    return out


def _profile_row(workload: Workload, spec: ProfileSpec, dev: torch.device, macs: dict) -> dict:
    base = {"model": workload.name, **_spec_fields(spec), "height": workload.height, "width": workload.width,
            "params": sum(p.numel() for p in workload.model.parameters()), **macs}
    try:
        if dev.type != "cuda" and spec.precision in ("bf16", "fp16"):
            raise NotImplementedError(CPU_AUTOCAST_NA)
        measure = lambda b: _measure(workload, spec, dev, b)  # noqa: E731
        measured = _sweep(measure, spec) if spec.sweep else _with_backoff(measure, spec.batch_size, dev)
        row = {**base, "status": "ok", **measured}
        if spec.compile:
            row.update(_measure_compiled(workload, spec, dev, row["batch_size"]))
        if spec.data_share and spec.mode == "train":
            row.update(_measure_data_share(workload, spec, dev, row["batch_size"]))
        if dev.type == "cuda":
            from ..records import device_name

            row.update(mfu_fields(row, device_name(dev)))
    except NotImplementedError as e:  # e.g. a model without set_grad_checkpointing, or autocast on a CPU
        row = {**base, "status": "n/a", "reason": str(e) or "not implemented"}
    except Exception as e:  # one setting's failure must not end a bulk run
        row = _error_row(base, e)
    return {**row, **_environment(dev), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _environment(dev: torch.device) -> dict:
    env = environment(dev)
    if dev.type == "cuda":
        env["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
    return env


def _with_backoff(run, batch_size: int, dev: torch.device) -> dict:
    while True:
        try:
            return run(batch_size)
        except RuntimeError as e:  # cuDNN/cuBLAS allocation failures are RuntimeErrors too
            if not is_out_of_memory(e) or dev.type != "cuda" or batch_size <= 1:
                raise
        # outside the except block, so the traceback (and the tensors its frames hold) is already released
        gc.collect()
        torch.cuda.empty_cache()
        batch_size = smaller_batch(batch_size)


def _sweep(measure: Callable[[int], dict], spec: ProfileSpec) -> dict:
    """The row of the throughput-optimal batch, with the latency at batch 1 and every measured point."""
    result = sweep_batch_sizes(measure, spec.max_batch)
    return {**result.best, "latency_ms_batch1": result.latency_ms_batch1, "sweep_points": result.summary(),
            "sweep_stop": result.stop}


def _prepare(workload: Workload, spec: ProfileSpec, dev: torch.device, batch_size: int):
    """Set the model up for ``spec`` and build its batch (outside any timed region)."""
    model = workload.model
    model.zero_grad(set_to_none=True)  # no gradients left over from an earlier setting or an OOM'd try
    set_matmul_precision(dev, spec.precision)
    model.set_grad_checkpointing(spec.grad_checkpointing)
    model.to(memory_format=torch.channels_last if spec.channels_last else torch.contiguous_format)
    model.train(spec.mode == "train")
    return workload.batch(batch_size, spec.channels_last)


def _make_step(workload: Workload, spec: ProfileSpec, dev: torch.device, batch,
               wrap: Callable[[Callable], Callable] = lambda fn: fn) -> Callable[[], None]:
    """One step of ``spec.mode``; ``wrap`` is applied to the model call (``predict`` or the loss), which is
    where ``torch.compile`` goes."""
    if spec.mode == "train":
        return make_train_step(workload, batch, dev, spec.precision, loss_fn=wrap(workload.loss))
    infer = wrap(workload.infer)

    def step():
        with torch.inference_mode(), autocast(dev, spec.precision):
            infer(batch)

    return step


def _measure_compiled(workload: Workload, spec: ProfileSpec, dev: torch.device, batch_size: int) -> dict:
    try:
        batch = _prepare(workload, spec, dev, batch_size)
    except Exception as e:  # e.g. out-of-memory building the batch: the eager numbers stand
        return {"compile_mode": spec.compile, "compile_error": f"{type(e).__name__}: {e}"}
    return time_compiled(lambda wrap: _make_step(workload, spec, dev, batch, wrap), spec.compile, dev, batch_size,
                         spec.warmup, spec.iters, spec.max_seconds, spec.min_iters)


def _measure_data_share(workload: Workload, spec: ProfileSpec, dev: torch.device, batch_size: int) -> dict:
    """The share of training step time spent waiting for real batches (:mod:`ocrbench.profile.loader`);
    a failure is that column's error, the timed numbers stand."""
    from .loader import measure_data_share, suite_for_data_share

    if not isinstance(workload, RecognizerWorkload):
        return {"data_share_error": "n/a: only line recognizers train on the suite's data"}
    try:
        suite = suite_for_data_share(spec.data_share, workload.height, spec.data_workers)
        return measure_data_share(workload.model, suite, dev, batch_size, spec.precision, spec.grad_checkpointing,
                                  spec.warmup, spec.iters)
    except Exception as e:  # the CLI checked the suite name first: this is a training failure
        return {"data_share_error": f"{type(e).__name__}: {e}"}


def _measure(workload: Workload, spec: ProfileSpec, dev: torch.device, batch_size: int) -> dict:
    model = workload.model
    batch = _prepare(workload, spec, dev, batch_size)
    out = {"batch_size": batch_size, "input_shape": workload.input_shape(batch_size)}
    step = _make_step(workload, spec, dev, batch)
    if spec.mode == "train":
        saved, loss = saved_activation_bytes(lambda: _loss(workload, batch, dev, spec.precision), model.parameters())
        del loss
        out["saved_activation_mib"] = round(saved / MIB, 3)
    if dev.type == "cuda":  # each row starts from an empty cache: its memory must not depend on run order
        release_cached_memory(dev)
    for _ in range(spec.warmup):
        step()
    # peaks reset after the warm-up (emptying the cache here would make the first timed step allocate afresh)
    with cuda_peak_memory(dev, empty_cache=False) if dev.type == "cuda" else contextlib.nullcontext({}) as mem:
        stats = time_steps(step, dev, warmup=0, iters=spec.iters, max_seconds=spec.max_seconds,
                           min_iters=spec.min_iters)
    stats = replace(stats, warmup=spec.warmup)
    out.update(stats.as_dict(), samples_per_s=round(stats.per_second(batch_size), 3))
    if mem:
        out.update(mem_peak_allocated_mib=round(mem["allocated"] / MIB, 1),
                   mem_peak_reserved_mib=round(mem["reserved"] / MIB, 1))
    return out


def _loss(workload: Workload, batch, dev: torch.device, precision: str, loss_fn: Callable | None = None
          ) -> torch.Tensor:
    with autocast(dev, precision):
        return (loss_fn or workload.loss)(batch)


def make_train_step(workload: Workload, batch, dev: torch.device, precision: str, loss_fn: Callable | None = None):
    """The recipe's step (ocrbench.harness.train) without its per-step ``loss.item()`` check, which would
    synchronise the device every step. ``loss_fn(batch)`` replaces ``workload.loss`` (a compiled one)."""
    from ..harness.train import make_optimizer, optimizer_step

    cfg = workload.recipe
    model = workload.model
    optimizer = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def step():
        optimizer_step(model, _loss(workload, batch, dev, precision, loss_fn), optimizer, scaler, cfg.grad_clip)

    return step


def mfu_fields(row: dict, device_name: str) -> dict:
    """Achieved TFLOP/s and MFU of a measured row on ``device_name``, eager and (when timed) compiled.

    The FLOPs are the model's, counted once in eager mode: a training step is 3 × the forward's whatever
    runs, so recomputation (gradient checkpointing, or torch.compile's rematerialisation) is not counted as
    useful work and lowers MFU, and a compiled step is credited the same FLOPs as an eager one."""
    training = row["mode"] == "train"
    flops = row.get("flops_per_line_train" if training else "flops_per_line_infer")
    if not flops:
        return {}
    peak = peak_flops(device_name, row["precision"])
    out = {"peak_tflops": peak and round(peak / 1e12, 2)}
    for prefix in ("", "compiled_"):
        speed = row.get(f"{prefix}samples_per_s")
        if speed is None:
            continue
        util = mfu(flops, speed, device_name, row["precision"], training)
        out[f"{prefix}achieved_tflops"] = round((3 if training else 1) * flops * speed / 1e12, 4)
        out[f"{prefix}mfu"] = None if util is None else round(util, 5)
    return out
