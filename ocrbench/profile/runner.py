"""Profile models: MACs, step time, throughput, memory and MFU, one row per (model, setting).

Method (the README's "Measurement" section): a fixed input shape per row, synthetic data built before the
timed region, ``warmup`` untimed steps, then ``iters`` timed steps (CUDA events per step, one synchronize at
the end; ``perf_counter`` on the CPU); the row reports the median step time, its interquartile range and
samples/s = batch size / median. An inference step is ``predict`` (forward + greedy decoding) under
``inference_mode``; a training step is the recipe's: forward, loss, backward, gradient clipping, AdamW step
(with a GradScaler for fp16 only). On CUDA out-of-memory the batch size is backed off and the row records
the batch size that ran. Any other failure becomes that row's ``error``; the other rows still run.
"""

from __future__ import annotations

import contextlib
import gc
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import torch

from ..config import PRECISIONS, TrainConfig
from ..errors import UserError
from ..records import environment
from ..report import PROFILES_FILE  # noqa: F401  (re-exported: where profile rows go)
from ..runtime import autocast, resolve_device, set_matmul_precision
from .flops import count_flops
from .memory import MIB, cuda_peak_memory, release_cached_memory, saved_activation_bytes
from .mfu import mfu, peak_flops
from .timing import time_steps
from .workloads import TIMM_PREFIX, Workload, make_workload

MODES = ("infer", "train")
CPU_AUTOCAST_NA = "bf16/fp16 autocast is not timed on a CPU (LSTMs fail or run ~75x slower there)"


@dataclass(frozen=True)
class ProfileSpec:
    """One measured setting. ``warmup``/``iters`` default to the documented method (≥10, ≥40);
    ``max_seconds`` stops timing early once ``min_iters`` steps are done (cheap CPU profiles)."""

    mode: str = "infer"
    batch_size: int = 32
    precision: str = "fp32"
    channels_last: bool = False
    grad_checkpointing: bool = False
    warmup: int = 10
    iters: int = 40
    max_seconds: float | None = None
    min_iters: int = 5

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.batch_size < 1 or self.iters < 1 or self.warmup < 0:
            raise UserError("batch size and iters must be >= 1 and warmup >= 0")


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
                  count_macs: bool = True) -> list[dict]:
    """Profile one model under each of ``specs``; returns one row (dict) per spec, failures included."""
    specs = list(specs)
    dev = resolve_device(device)
    try:
        workload = make_workload(name, height, width, charset, model_kwargs)
    except Exception as e:  # a model that cannot even be built: every row says why
        return [_error_row({"model": name, **_spec_fields(s), **environment(dev)}, e) for s in specs]
    macs = _macs_fields(workload) if count_macs else {}
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
                         model_kwargs=model_kwargs)


# ---------------------------------------------------------------------------------------------- rows

def _spec_fields(spec: ProfileSpec) -> dict:
    fields = ("mode", "precision", "channels_last", "grad_checkpointing")
    return {"kind": "profile", **{k: getattr(spec, k) for k in fields}, "batch_size_requested": spec.batch_size}


def _error_row(base: dict, e: BaseException) -> dict:
    return {**base, "status": "error", "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(limit=4)}


def _macs_fields(workload: Workload) -> dict:
    """MACs per sample (line) of the training forward and of inference, at the workload's shape."""
    try:
        passes = workload.flops_passes()
        train = count_flops(*passes["train"])
        same = passes["train"][0] is passes["infer"][0] and all(
            a is b for a, b in zip(passes["train"][1], passes["infer"][1], strict=True))
        infer = train if same else count_flops(*passes["infer"])
    except Exception as e:  # a model the tracer cannot follow: the row still gets its timings
        return {"macs_error": f"{type(e).__name__}: {e}"}
    return {"macs_per_line_train": train.macs, "macs_per_line_infer": infer.macs,
            "flops_per_line_train": train.flops, "flops_per_line_infer": infer.flops,
            "macs_by_op": infer.by_op,
            "macs_basis": "forward" if same else "train: teacher-forced forward; infer: greedy decoding",
            "unsupported_ops": {**train.unsupported_ops, **infer.unsupported_ops},
            "uncounted_matmul_ops": {**train.uncounted_matmul_ops, **infer.uncounted_matmul_ops}}


def _profile_row(workload: Workload, spec: ProfileSpec, dev: torch.device, macs: dict) -> dict:
    base = {"model": workload.name, **_spec_fields(spec), "height": workload.height, "width": workload.width,
            "params": sum(p.numel() for p in workload.model.parameters()), **macs}
    try:
        if dev.type != "cuda" and spec.precision in ("bf16", "fp16"):
            raise NotImplementedError(CPU_AUTOCAST_NA)
        measured = _with_backoff(lambda b: _measure(workload, spec, dev, b), spec.batch_size, dev)
        row = {**base, "status": "ok", **measured}
        if dev.type == "cuda":
            row.update(_mfu_fields(row, dev))
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


def smaller_batch(batch_size: int) -> int:
    """Next batch size to try after an out-of-memory error: 3/4, kept a multiple of 8 while it can be."""
    if batch_size <= 8:
        return batch_size // 2
    return max(8, (batch_size * 3 // 4) // 8 * 8)


def _with_backoff(run, batch_size: int, dev: torch.device) -> dict:
    while True:
        try:
            return run(batch_size)
        except torch.cuda.OutOfMemoryError:
            if dev.type != "cuda" or batch_size <= 1:
                raise
        # outside the except block, so the traceback (and the tensors its frames hold) is already released
        gc.collect()
        torch.cuda.empty_cache()
        batch_size = smaller_batch(batch_size)


def _measure(workload: Workload, spec: ProfileSpec, dev: torch.device, batch_size: int) -> dict:
    model = workload.model
    model.zero_grad(set_to_none=True)  # no gradients left over from an earlier setting or an OOM'd try
    set_matmul_precision(dev, spec.precision)
    model.set_grad_checkpointing(spec.grad_checkpointing)
    model.to(memory_format=torch.channels_last if spec.channels_last else torch.contiguous_format)
    batch = workload.batch(batch_size, spec.channels_last)
    out = {"batch_size": batch_size, "input_shape": workload.input_shape(batch_size)}
    if spec.mode == "infer":
        model.eval()

        def step():
            with torch.inference_mode(), autocast(dev, spec.precision):
                workload.infer(batch)
    else:
        model.train()
        step = make_train_step(workload, batch, dev, spec.precision)
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


def _loss(workload: Workload, batch, dev: torch.device, precision: str) -> torch.Tensor:
    with autocast(dev, precision):
        return workload.loss(batch)


def make_train_step(workload: Workload, batch, dev: torch.device, precision: str):
    """The recipe's step (ocrbench.train) without its per-step ``loss.item()`` check, which would
    synchronise the device every step."""
    from ..train import make_optimizer, optimizer_step

    cfg = TrainConfig()
    model = workload.model
    optimizer = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def step():
        optimizer_step(model, _loss(workload, batch, dev, precision), optimizer, scaler, cfg.grad_clip)

    return step


def _mfu_fields(row: dict, dev: torch.device) -> dict:
    """Achieved TFLOP/s and MFU of a measured CUDA row (training counts 3 × the forward FLOPs)."""
    from ..records import device_name

    training = row["mode"] == "train"
    flops = row.get("flops_per_line_train" if training else "flops_per_line_infer")
    if not flops:
        return {}
    name = device_name(dev)
    peak = peak_flops(name, row["precision"])
    achieved = (3 if training else 1) * flops * row["samples_per_s"]
    util = mfu(flops, row["samples_per_s"], name, row["precision"], training)
    return {"achieved_tflops": round(achieved / 1e12, 4), "peak_tflops": peak and round(peak / 1e12, 2),
            "mfu": None if util is None else round(util, 5)}
