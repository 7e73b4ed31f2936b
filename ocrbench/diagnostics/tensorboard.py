"""Training curves as TensorBoard events: loss and learning rate every few steps, validation CER at each
point of the validation curve. Needs the optional extra ``ocrbench[tensorboard]`` (imported lazily, when
the callback is made, so a missing package fails before training rather than after it)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..harness.callbacks import Callback
from ..harness.train import HISTORY_EVERY

TENSORBOARD_DIR = "tensorboard"  # the event files' folder inside a run folder


def summary_writer(log_dir: str | Path):
    """A ``torch.utils.tensorboard.SummaryWriter``, or a one-line error naming the extra to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch ships the writer, but it needs the tensorboard package
        raise UserError(f"TensorBoard logging needs the tensorboard package: pip install 'ocrbench[tensorboard]' "
                        f"({e})") from None
    return SummaryWriter(log_dir=str(log_dir))


class TensorBoardCallback(Callback):
    """Writes ``train/loss`` and ``train/lr`` every ``every`` steps (the run record's curve spacing by
    default) and ``val/cer`` at every validation, to ``log_dir`` (``tensorboard --logdir`` on its parent
    compares runs)."""

    def __init__(self, log_dir: str | Path, every: int = HISTORY_EVERY):
        self.log_dir, self.every = Path(log_dir), max(1, every)
        self.writer = summary_writer(self.log_dir)

    def on_step(self, model, state, loss: float, lr: float) -> None:
        if state.step % self.every == 0 or state.step == state.total_steps:
            self.writer.add_scalar("train/loss", loss, state.step)
            self.writer.add_scalar("train/lr", lr, state.step)

    def on_validate(self, model, state, cer: float) -> None:
        self.writer.add_scalar("val/cer", cer, state.step)
        self.writer.flush()  # a validation point is rare and worth seeing at once in a live TensorBoard

    def on_train_end(self, model, state) -> None:
        self.writer.close()
