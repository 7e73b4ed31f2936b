"""Learning-rate range test (Smith 2017, "Cyclical Learning Rates"; popularised by fastai's lr_find).

Train from the model's initial weights while the learning rate grows exponentially from ``start_lr`` to
``end_lr``; record the smoothed loss and stop once it exceeds ``diverge`` times its minimum. The suggestion
is the learning rate of the steepest loss descent, a tenth of the loss minimum's rate as a fallback. The
model is left in its initial state (weights are restored) so the test can precede a real run.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import TrainConfig
from ..errors import UserError
from ..harness.train import AugmentedLines, BatchOrder, _collate_fn, make_optimizer, optimizer_step
from ..runtime import autocast, resolve_device, set_matmul_precision


@dataclass
class LRFinderResult:
    lrs: list[float]
    losses: list[float]  # exponentially smoothed, bias-corrected
    suggestion: float
    diverged_at: float | None

    def as_dict(self) -> dict:
        return {"suggested_lr": self.suggestion, "diverged_at": self.diverged_at, "steps": len(self.lrs),
                "lrs": self.lrs, "losses": self.losses}


DEFAULT_START_LR, DEFAULT_END_LR, DEFAULT_STEPS = 1e-6, 1.0, 100


def check_lr_range(start_lr: float | None, end_lr: float | None, steps: int | None) -> None:
    """A range that does not grow, or is not positive, is refused (None: the default)."""
    start = DEFAULT_START_LR if start_lr is None else start_lr
    end = DEFAULT_END_LR if end_lr is None else end_lr
    if not 0 < start < end:
        raise UserError(f"--start-lr must be > 0 and below --end-lr (the rate grows from start to end), "
                        f"got {start:g} to {end:g}")
    if steps is not None and steps < 2:
        raise UserError(f"--steps must be >= 2, got {steps}")


def lr_range_test(model, dataset: Dataset, cfg: TrainConfig, start_lr: float = DEFAULT_START_LR,
                  end_lr: float = DEFAULT_END_LR, steps: int = DEFAULT_STEPS, smoothing: float = 0.9,
                  diverge: float = 4.0) -> LRFinderResult:
    check_lr_range(start_lr, end_lr, steps)
    device = resolve_device(cfg.device)
    set_matmul_precision(device, cfg.precision)  # as training: no TF32 matmuls/convs/RNNs unless "tf32"
    initial = copy.deepcopy(model.state_dict())
    model.to(device).train()
    optimizer = make_optimizer(model, cfg)
    # fp16 as in training: a loss scale against underflowing gradients; a step whose gradients overflow
    # (inf/nan after scaling) is skipped and the scale lowered (on a CPU, fp16 is refused by autocast)
    scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
    loader = DataLoader(AugmentedLines(dataset, cfg.seed, cfg.augment, cfg.augmentation), collate_fn=_collate_fn(model),
                        batch_sampler=BatchOrder(len(dataset), cfg.batch_size, cfg.seed),
                        generator=torch.Generator().manual_seed(cfg.seed))
    growth = (end_lr / start_lr) ** (1 / max(1, steps - 1))
    lrs, losses, avg, best, diverged = [], [], 0.0, math.inf, None
    for step, batch in zip(range(steps), loader):
        lr = start_lr * growth**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(device, cfg.precision):
            loss = model.loss(batch.to(device))
        value = loss.item()
        avg = smoothing * avg + (1 - smoothing) * value
        smoothed = avg / (1 - smoothing ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if not math.isfinite(value) or smoothed > diverge * best:
            diverged = lr
            break
        optimizer_step(model, loss, optimizer, scaler, cfg.grad_clip)
    model.load_state_dict(initial)
    return LRFinderResult(lrs, losses, suggest_lr(lrs, losses), diverged)


def suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """LR of the steepest descent of the smoothed loss over log(lr), skipping the noisy first and last tenth."""
    if len(lrs) < 5:
        return lrs[int(np.argmin(losses))] / 10 if lrs else float("nan")
    lo, hi = len(lrs) // 10, len(lrs) - len(lrs) // 10
    slopes = np.gradient(np.asarray(losses[lo:hi]), np.log(np.asarray(lrs[lo:hi])))
    return float(lrs[lo + int(np.argmin(slopes))])


def plot_lr_finder(result: LRFinderResult, path: str | Path, title: str = "") -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses)
    ax.axvline(result.suggestion, color="tab:red", ls="--", label=f"suggested lr {result.suggestion:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title(title or "learning-rate range test")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
