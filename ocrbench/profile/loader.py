"""The data-loading share of training: how much of a training step waits for its batch.

The other profile columns time steps on synthetic batches built before the timed region, so they say nothing
about the loader. This measurement runs the recipe's own training loop (:func:`ocrbench.harness.train.train`: the
same DataLoader, augmentation, collate and ``num_workers``) on a suite's real training split for
``warmup + iters`` steps, and reports the share of step time spent in ``next(loader)`` over the steps after
the warm-up (the first batches include worker start-up). It is the figure every training run records as
``data_wait_share``, measured here under the profiler's settings so models can be compared side by side.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace

import torch

from ..config import SuiteConfig, load_suite, resolve_config
from ..datasets import create_dataset
from ..harness.callbacks import Callback
from ..harness.train import resolve_workers, train

NO_CHECKPOINTS = 10**9  # the measurement's throwaway run writes only its final checkpoint


class _AfterWarmup(Callback):
    """Snapshots (elapsed, data_wait) once ``skip`` steps are done, so warm-up steps are left out."""

    def __init__(self, skip: int):
        self.skip, self.start = skip, (0.0, 0.0)

    def on_step(self, model, state, loss: float, lr: float) -> None:
        if state.step == self.skip:
            self.start = (state.elapsed, state.data_wait)


def suite_for_data_share(suite: str, height: int | None = None, workers: int | str | None = None) -> SuiteConfig:
    """The suite whose training data and loader settings the measurement uses, at ``height`` and with
    ``workers`` DataLoader workers where given (validated as the suite's own ``train.num_workers`` is)."""
    overrides = {k: v for k, v in {"data.height": height, "train.num_workers": workers}.items() if v is not None}
    return load_suite(resolve_config(suite), overrides)


def measure_data_share(model: torch.nn.Module, suite: SuiteConfig, dev: torch.device, batch_size: int,
                       precision: str, grad_checkpointing: bool, warmup: int, iters: int) -> dict:
    """Train ``model`` (it is changed: use a throwaway instance) for ``warmup + iters`` steps of the suite's
    recipe on its training split; the share of the timed steps' time spent waiting for batches."""
    train_set = create_dataset(suite.data.name, "train", suite.data)
    cfg = replace(suite.train, steps=warmup + iters, batch_size=batch_size, device=str(dev), precision=precision,
                  grad_checkpointing=grad_checkpointing, eval_every=0, checkpoint_every=NO_CHECKPOINTS,
                  max_minutes=None, compile=False)
    window = _AfterWarmup(warmup)
    with tempfile.TemporaryDirectory(prefix="ocrbench-data-share-") as out:
        result = train(model, train_set, cfg, out, progress=False, callbacks=[window])
    seconds, wait = result.seconds - window.start[0], result.data_wait - window.start[1]
    return {"data_share_suite": suite.name, "data_share_workers": resolve_workers(cfg.num_workers, dev),
            "data_share_steps": iters, "data_wait_share": round(wait / seconds, 4) if seconds > 0 else None,
            "data_lines_per_s": round(iters * batch_size / seconds, 2) if seconds > 0 else None}
