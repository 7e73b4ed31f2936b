"""The fixed training recipe shared by every recognizer: AdamW, one-cycle LR, gradient clipping, the same
augmentation, batch order and budget. The harness only uses the model contract (``loss``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import TrainConfig
from ..data.augment import augment_line
from ..data.samples import LineSample
from ..errors import UserError
from ..lm.schedule import one_cycle_factor
from ..progress import progress_bar
from ..runtime import autocast, resolve_device, set_deterministic, set_matmul_precision, sync, usable_cores
from . import checkpoint, distributed
from .callbacks import Callback
from .checkpoint import CHECKPOINT

# Validation CER targets of the time-to-accuracy figures (DAWNBench-style): the first step and training
# second at which the validation CER fell to or below each.
CER_TARGETS = (0.5, 0.2, 0.1, 0.05)
DROPOUT_SEED_OFFSET = 7_777  # the dropout stream's seed is train.seed + this (model init uses train.seed)
# data-parallel rank r > 0 adds r times this to its dropout seed: its own stream, far from other seeds' streams
RANK_SEED_STRIDE = 1_000_003
HISTORY_EVERY = 10  # steps between points of the recorded training curve (loss, learning rate)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class BatchOrder:
    """Infinite, deterministic batch sampler: epoch ``e`` is a permutation seeded by ``(seed, e)``.

    Starting at ``start_step`` reproduces exactly the batches an uninterrupted run would have drawn.
    Yields lists of ``(index, draw)`` keys; ``draw`` (the running sample count) seeds augmentation.
    With ``world`` > 1 processes, ``batch_size`` is the global batch and process ``rank`` gets its shard of
    each (:func:`ocrbench.harness.distributed.shard`): together the ranks see exactly the one-process batches.
    With ``widths`` (``train.batching: width``) each epoch's permutation is cut into pools of
    :data:`BUCKET_POOL` batches, each pool sorted by line width and cut into batches, and the epoch's batches
    shuffled: a batch holds lines of similar width, so little of it is padding, and every line is still seen
    once per epoch in a seeded order.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0, world: int = 1,
                 widths: np.ndarray | None = None):
        if n < batch_size:
            raise UserError(f"the training split has {n} lines, fewer than the batch size {batch_size}")
        distributed.check_batch_split(batch_size, world)
        self.n, self.batch_size, self.seed, self.start_step = n, batch_size, seed, start_step
        self.rank, self.world, self.widths = rank, world, widths
        self.per_epoch = n // batch_size  # drop the ragged last batch: every step sees batch_size lines

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step, batches, epoch_held = self.start_step, None, None
        while True:
            epoch, k = divmod(step, self.per_epoch)
            if epoch != epoch_held:
                batches, epoch_held = self.epoch_batches(epoch), epoch
            keys = [(int(i), step * self.batch_size + j) for j, i in enumerate(batches[k])]
            yield distributed.shard(keys, self.rank, self.world) if self.world > 1 else keys
            step += 1

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """The epoch's batches of line indices, shape ``(per_epoch, batch_size)``."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)[:self.per_epoch * self.batch_size]
        if self.widths is None:
            return order.reshape(self.per_epoch, self.batch_size)
        pools = [order[i:i + BUCKET_POOL * self.batch_size] for i in range(0, len(order), BUCKET_POOL * self.batch_size)]
        by_width = np.concatenate([pool[np.argsort(self.widths[pool], kind="stable")] for pool in pools])
        batches = by_width.reshape(self.per_epoch, self.batch_size)
        return batches[np.random.default_rng([self.seed, epoch, 1]).permutation(self.per_epoch)]


# batches per pool of width batching: large enough that a pool's lines span the width range finely (a batch of
# 16 from a pool of 800 real lines pads ~2% on the copiste lines), small enough that batch composition still
# changes every epoch
BUCKET_POOL = 50


def batching_widths(model, dataset: Dataset) -> np.ndarray:
    """The widths batches are cut by: each line as the model's collate will pad it (a recognizer widens a line
    to ``min_input_width`` of its text: a CTC model needs frames for every character), so dense lines are batched
    with lines of their padded width."""
    widths = line_widths(dataset)
    if model.task != "recognition":
        return widths
    return np.maximum(widths, [model.min_input_width(len(dataset[i].text)) for i in range(len(dataset))])


def line_widths(dataset: Dataset) -> np.ndarray:
    """Every line's width: the dataset's own ``widths()`` (cached line datasets read no pixels), else measured."""
    if hasattr(dataset, "widths"):
        return np.asarray(dataset.widths())
    return np.array([dataset[i].image.shape[1] for i in range(len(dataset))])


class AugmentedLines(Dataset):
    """Training view of a line dataset: sample ``(index, draw)`` is augmented with a generator seeded by
    ``(seed, draw)``, so augmentation is reproducible and independent of worker count."""

    def __init__(self, dataset: Dataset, seed: int, augment: bool, policy: str = "mild"):
        self.dataset, self.seed, self.augment, self.policy = dataset, seed, augment, policy

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> LineSample:
        index, draw = key
        sample = self.dataset[index]
        if not self.augment:
            return sample
        rng = np.random.default_rng([self.seed, 7919, draw])
        return LineSample(augment_line(sample.image, rng, self.policy), sample.text, sample.meta)


class _DropDraw(Dataset):
    """Training view for non-line models (detectors): the ``draw`` key is not used."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        return self.dataset[key[0]]


def _training_view(model, dataset: Dataset, cfg: TrainConfig) -> Dataset:
    if model.task == "recognition":
        return AugmentedLines(dataset, cfg.seed, cfg.augment, cfg.augmentation)
    return _DropDraw(dataset)


def _collate_fn(model):
    """The model's own collate function (the contract: lines for recognizers, pages for detectors)."""
    return model.collate


@dataclass
class TrainState:
    step: int = 0
    total_steps: int = 0
    elapsed: float = 0.0  # seconds of training steps, batch loading included (not validation or checkpoints)
    finished: bool = False
    truncated: bool = False  # stopped by the max_minutes safety limit before ``total_steps``
    data_wait: float = 0.0  # the part of ``elapsed`` spent waiting for the next batch (loading, augmentation)
    history: list = field(default_factory=list)  # (step, loss, lr) every HISTORY_EVERY steps: the training curve
    val_curve: list = field(default_factory=list)  # (step, training seconds, validation CER) every eval_every
    line_pixels: int = 0  # pixels of the lines in the training batches...
    batch_pixels: int = 0  # ...and of the padded batches: their ratio is the padding share


@dataclass
class TrainResult:
    steps: int
    seconds: float
    final_loss: float
    lines_per_second: float
    resumed_from: int
    truncated: bool = False
    val_curve: list = field(default_factory=list)
    data_wait: float = 0.0
    history: list = field(default_factory=list)  # (step, loss, lr) every HISTORY_EVERY steps
    world_size: int = 1  # data-parallel processes that trained it (the loss is their mean)
    padding_share: float | None = None  # fraction of the training batches' pixels that were padding (None: pages)

    @property
    def data_wait_share(self) -> float:
        """Fraction of training time spent waiting for batches (the loader starving the model)."""
        return self.data_wait / self.seconds if self.seconds else 0.0

    def time_to_targets(self, targets=CER_TARGETS) -> dict:
        """``{"0.1": {"step": s, "seconds": t}, ...}``: the first validation at or below each target CER
        (``None`` when never reached)."""
        out = {}
        for target in targets:
            hit = next(((step, sec) for step, sec, cer in self.val_curve if cer <= target), None)
            out[str(target)] = None if hit is None else {"step": hit[0], "seconds": round(hit[1], 1)}
        return out


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and norm parameters (1-D tensors), as in timm's param_groups_weight_decay.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def train(model, train_set: Dataset, cfg: TrainConfig, out_dir: str | Path, config_hash: str = "",
          resume: bool = False, progress: bool = True, validate: Callable[[], float] | None = None,
          callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` optimizer steps with the shared recipe, checkpointing to ``out_dir``.

    The budget is the step count, so the same config and seed give the same weights on any machine;
    ``cfg.max_minutes`` is only a safety limit, and a run stopped by it is marked ``truncated``. With
    ``resume``, a checkpoint in ``out_dir`` written under the same ``config_hash`` is continued from its step
    (the batch order and schedule continue exactly). ``validate`` (the validation CER of the model as it
    is) is called every ``cfg.eval_every`` steps and at the end, outside the timed steps, for the
    time-to-accuracy figures. ``callbacks`` (:class:`~ocrbench.harness.callbacks.Callback`) observe the run outside
    the timed steps (TensorBoard, feature-map snapshots). Raises :class:`TrainingDiverged` on a non-finite loss.

    In a torchrun process group (:mod:`ocrbench.harness.distributed`) every rank calls this with the same arguments:
    ``cfg.batch_size`` is the global batch, each rank trains on its shard through DistributedDataParallel,
    and only rank 0 validates, runs ``callbacks``, shows progress and writes checkpoints; all ranks resume
    from the same checkpoint. BatchNorm statistics are per rank (rank 0's are saved).
    """
    run = _setup(model, cfg, Path(out_dir), config_hash, resume, progress, validate, callbacks)
    if run.state.finished and not raised_limit(run.state, cfg):
        return _result(run.state, cfg, run.start_step)
    run.state.finished = run.state.truncated = False  # a truncated run whose limit was raised continues
    _start(run, train_set)
    _loop(run)
    return _finish(run)


@dataclass
class _Run:
    """One training run in progress: what :func:`_setup` and :func:`_start` hand the loop and the finish."""

    model: torch.nn.Module
    cfg: TrainConfig
    device: torch.device
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    state: TrainState
    ckpt_path: Path
    config_hash: str
    rank: int
    world: int
    progress: bool
    validate: Callable[[], float] | None
    callbacks: Sequence[Callback]
    start_step: int = 0
    batches: Iterator | None = None
    loss_fn: Callable | None = None
    bar: Any = None


def _setup(model, cfg: TrainConfig, out_dir: Path, config_hash: str, resume: bool, progress: bool,
           validate: Callable[[], float] | None, callbacks: Sequence[Callback]) -> _Run:
    """Device, precision and determinism, the model on the device, optimizer and scaler, then the checkpoint's
    state and RNG (with ``resume``) or a fresh dropout stream from the seed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world = distributed.rank(), distributed.world_size()
    if rank:  # one writer and one observer: rank 0
        progress, validate, callbacks = False, None, ()
    device = resolve_device(cfg.device)
    set_matmul_precision(device, cfg.precision)
    set_deterministic(cfg.deterministic)
    model.to(device).train()
    model.set_grad_checkpointing(cfg.grad_checkpointing)
    optimizer = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
    run = _Run(model, cfg, device, optimizer, scaler, TrainState(total_steps=cfg.steps), out_dir / CHECKPOINT,
               config_hash, rank, world, progress, validate, callbacks)
    if resume and run.ckpt_path.exists():
        saved = checkpoint.restore(run.ckpt_path, model, optimizer, scaler, config_hash, _dropout_seed(cfg.seed, rank))
        run.state = TrainState(**saved)
    else:  # the dropout stream starts from the seed, whatever ran before in this process
        torch.manual_seed(_dropout_seed(cfg.seed, rank))
    run.start_step = run.state.step
    return run


def _start(run: _Run, train_set: Dataset) -> None:
    """The batches (a DataLoader in the fixed order, from the run's step), the callbacks' start, the progress
    bar and the loss function."""
    model, cfg, state = run.model, run.cfg, run.state
    workers = resolve_workers(cfg.num_workers, run.device)
    widths = batching_widths(model, train_set) if cfg.batching == "width" else None
    loader = DataLoader(_training_view(model, train_set, cfg),
                        batch_sampler=BatchOrder(len(train_set), cfg.batch_size, cfg.seed, state.step, run.rank,
                                                 run.world, widths),
                        collate_fn=_collate_fn(model), num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=run.device.type == "cuda",
                        # its own generator: iter() would otherwise draw from the global RNG and shift the
                        # dropout stream of a resumed run
                        generator=torch.Generator().manual_seed(cfg.seed))
    for cb in run.callbacks:
        cb.on_train_begin(model, state)
    run.bar = progress_bar(total=state.total_steps, progress=run.progress, initial=state.step, dynamic_ncols=True,
                           desc=f"train {model.name}")
    run.batches = iter(loader)
    run.loss_fn = _loss_function(model, cfg, run.world)


def _loop(run: _Run) -> None:
    """Optimizer steps until the budget, or until the max_minutes safety limit stops the run (truncated)."""
    state = run.state
    while state.step < state.total_steps:
        loss, stop = _timed_step(run)
        lr = run.optimizer.param_groups[0]["lr"]
        _observe(run, loss, lr)
        if stop:
            state.truncated = True  # the max_minutes safety limit: the run is kept, marked, and never ranked
            break
        _report_and_checkpoint(run, loss, lr)
    run.bar.close()


def _timed_step(run: _Run) -> tuple[float, bool]:
    """One optimizer step, timed with its batch's loading; the loss and the stop decision every rank agrees on."""
    cfg, state, world = run.cfg, run.state, run.world
    t0 = time.perf_counter()
    batch = next(run.batches)
    state.data_wait += time.perf_counter() - t0
    _count_padding(state, batch)
    batch = batch.to(run.device, non_blocking=True)
    # with several ranks the finiteness check waits for agree(): a rank raising alone would leave the
    # others blocked in their gradient all-reduce until torchrun tears the group down, with no record
    loss = _train_step(run.model, run.loss_fn, batch, run.optimizer, run.scaler, cfg, state, run.device,
                       check_finite=world == 1)
    sync(run.device)
    state.elapsed += time.perf_counter() - t0
    state.step += 1
    stop = bool(cfg.max_minutes) and state.elapsed >= cfg.max_minutes * 60 and state.step < state.total_steps
    loss, stop = distributed.agree(loss, stop)  # the same loss and stop on every rank; no-op in one process
    if not math.isfinite(loss):  # every rank raises together; rank 0's suite records the failure
        raise TrainingDiverged(_diverged_message(loss, state.step - 1, cfg) + f" (mean over {world} processes)")
    return loss, stop


def _count_padding(state: TrainState, batch) -> None:
    """Add a line batch's real and padded pixels (on the host, before the copy to the device)."""
    widths = getattr(batch, "host_widths", None)
    if widths is None:
        widths = getattr(batch, "widths", None)
    if widths is None or not hasattr(batch, "images"):
        return  # pages: no padding to measure
    state.line_pixels += int(widths.sum()) * batch.images.shape[-2]
    state.batch_pixels += batch.images.shape[0] * batch.images.shape[-2] * batch.images.shape[-1]


def _observe(run: _Run, loss: float, lr: float) -> None:
    """The training curve, the callbacks and, every ``eval_every`` steps, a validation: outside the timed step."""
    state = run.state
    if state.step % HISTORY_EVERY == 0 or state.step == state.total_steps:
        state.history.append((state.step, round(loss, 5), float(f"{lr:.4g}")))
    for cb in run.callbacks:
        cb.on_step(run.model, state, loss, lr)
    if run.validate is not None and run.cfg.eval_every and state.step % run.cfg.eval_every == 0:
        _validate(run.model, run.validate, state, run.callbacks)


def _report_and_checkpoint(run: _Run, loss: float, lr: float) -> None:
    """The progress bar, and a checkpoint every ``checkpoint_every`` steps (every rank's RNG, rank 0 writes)."""
    state, cfg = run.state, run.cfg
    run.bar.update(1)
    run.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}",
                        lines_s=f"{(state.step - run.start_step) * cfg.batch_size / max(state.elapsed, 1e-9):.1f}")
    if state.step % cfg.checkpoint_every == 0:
        rank_rng = distributed.gather_rng_states()  # a collective: every rank, before rank 0 writes
        if run.rank == 0:
            checkpoint.save_checkpoint(run.ckpt_path, run.model, run.optimizer, run.scaler, state, run.config_hash,
                                       rank_rng)


def _finish(run: _Run) -> TrainResult:
    """The last validation (unless the last step had one), the finished checkpoint, the callbacks' end."""
    state = run.state
    if run.validate is not None and (not state.val_curve or state.val_curve[-1][0] != state.step):
        _validate(run.model, run.validate, state, run.callbacks)
    state.finished = True
    if run.rank == 0:
        checkpoint.save_checkpoint(run.ckpt_path, run.model, run.optimizer, run.scaler, state, run.config_hash)
    for cb in run.callbacks:
        cb.on_train_end(run.model, state)
    return _result(state, run.cfg, run.start_step)


def raised_limit(state: TrainState, cfg: TrainConfig) -> bool:
    """Whether a run the max_minutes safety limit stopped may go on: the limit is now higher than the time it
    trained (or gone), so rerunning with a raised limit finishes it from its checkpoint."""
    return state.truncated and state.step < state.total_steps and (not cfg.max_minutes
                                                                   or state.elapsed < cfg.max_minutes * 60)


def _dropout_seed(seed: int, rank: int) -> int:
    """Seed of a rank's dropout stream (rank 0's is the one-process run's)."""
    return seed + DROPOUT_SEED_OFFSET + RANK_SEED_STRIDE * rank


def _loss_function(model, cfg: TrainConfig, world: int) -> Callable:
    """``model.loss``, through DistributedDataParallel with several ranks, compiled with ``cfg.compile``."""
    loss_fn = distributed.data_parallel_loss(model) if world > 1 else model.loss
    return torch.compile(loss_fn, dynamic=True) if cfg.compile else loss_fn  # lines vary in width


def resolve_workers(num_workers: int | str, device: torch.device) -> int:
    """``"auto"``: no workers on a CPU, where they take cores from the model's own threads (measured on 2
    cores, docs/profiling.md: one worker cut the quick models' data wait from 5-9% to 1-4% and their training
    speed by 7-23%); on a GPU, the CPU cores this process may use per visible GPU, less one for the main
    process, at most 8."""
    if num_workers != "auto":
        return int(num_workers)
    if device.type != "cuda":
        return 0
    return max(1, min(8, usable_cores() // max(1, torch.cuda.device_count()) - 1))


def _validate(model, validate: Callable[[], float], state: TrainState, callbacks: Sequence[Callback] = ()) -> None:
    """One point of the validation curve; the model goes back to training mode afterwards."""
    cer = float(validate())
    model.train()
    state.val_curve.append((state.step, round(state.elapsed, 2), round(cer, 5)))
    for cb in callbacks:
        cb.on_validate(model, state, cer)


def _result(state: TrainState, cfg: TrainConfig, start_step: int) -> TrainResult:
    return TrainResult(state.step, state.elapsed, _last_loss(state), _rate(state, cfg), start_step,
                       state.truncated, list(state.val_curve), state.data_wait, list(state.history),
                       distributed.world_size(), _padding_share(state))


def _padding_share(state: TrainState) -> float | None:
    """None when nothing was measured: pages, or a run finished by code that did not count padding."""
    return 1 - state.line_pixels / state.batch_pixels if state.batch_pixels else None


def _train_step(model, loss_fn, batch, optimizer, scaler, cfg: TrainConfig, state: TrainState, device,
                check_finite: bool = True) -> float:
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * one_cycle_factor(state.step, state.total_steps, cfg.pct_start)
    with autocast(device, cfg.precision):
        loss = loss_fn(batch)
    if check_finite and not torch.isfinite(loss):
        raise TrainingDiverged(_diverged_message(loss.item(), state.step, cfg))
    optimizer_step(model, loss, optimizer, scaler, cfg.grad_clip)
    return loss.item()


def _diverged_message(loss: float, step: int, cfg: TrainConfig) -> str:
    return f"loss is {loss} at step {step}: training stopped (try a lower lr than {cfg.lr}, or fp32)"


def optimizer_step(model, loss: torch.Tensor, optimizer, scaler, grad_clip: float) -> None:
    """Backward, clip the global gradient norm, step (through the GradScaler for fp16)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()


def _last_loss(state: TrainState) -> float:
    return float(state.history[-1][1]) if state.history else float("nan")


def _rate(state: TrainState, cfg: TrainConfig) -> float:
    return state.step * cfg.batch_size / state.elapsed if state.elapsed else 0.0
