"""Observers of a training run (fastai's callbacks, reduced to what ocrbench needs): TensorBoard logging,
feature-map snapshots. :func:`ocrbench.harness.train.train` calls them outside the timed steps, so they never count
in throughput or time-to-CER, and they cannot change the run (the recipe stays the same for every model)."""

from __future__ import annotations


class Callback:
    """Override what you need; ``state`` is the :class:`~ocrbench.harness.train.TrainState` (step, elapsed, curves)."""

    def on_train_begin(self, model, state) -> None:
        """Before the first step (also after a resume)."""

    def on_step(self, model, state, loss: float, lr: float) -> None:
        """After every optimizer step; ``state.step`` is the number of steps done."""

    def on_validate(self, model, state, cer: float) -> None:
        """After each point of the validation curve."""

    def on_train_end(self, model, state) -> None:
        """After the last step and the final checkpoint."""
