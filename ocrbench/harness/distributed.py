"""Data-parallel training across the processes torchrun starts (one per GPU, or several on a CPU).

``torchrun --nproc-per-node N -m ocrbench train ...`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
:func:`init_from_env` then joins the process group (gloo on a CPU, nccl on GPUs, one GPU per local rank).
Without torchrun every helper here is a no-op and training is exactly the one-process path: no collective
runs when the world size is 1.

Training (:func:`ocrbench.harness.train.train`) keeps ``train.batch_size`` as the *global* batch: every rank takes
its shard of each global batch (:func:`shard`), gradients are averaged by DistributedDataParallel, and rank 0
alone validates, writes checkpoints and records.
"""

from __future__ import annotations

import datetime
import os

import torch
from torch import nn

from ..errors import UserError
from ..runtime import resolve_device

# Rank 0 alone builds the test and validation sets before training and validates during it, while the other
# ranks wait in their next collective: a generous limit, so a large first-time dataset build is not a crash
# (torch's defaults are 10 minutes for nccl and 30 for gloo).
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


def env_world_size() -> int:
    """The world size torchrun announces (1 without torchrun), before any process group exists."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: str = "auto") -> bool:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1 (else do nothing); True when one is joined.

    ``device`` is the training device setting: a CUDA one selects nccl and this process's GPU,
    ``cuda:LOCAL_RANK`` (so "auto"/"cuda" mean the local GPU from here on); a CPU one selects gloo.
    """
    if is_initialized():
        return True
    if env_world_size() <= 1:
        return False
    if not torch.distributed.is_available():
        raise UserError("torchrun started several processes, but this torch build has no torch.distributed; "
                        "run `ocrbench train` without torchrun")
    backend = "gloo"
    if resolve_device(device).type == "cuda":
        if device not in ("auto", "cuda"):
            raise UserError(f"--device {device} names one GPU, but each torchrun process trains on its own "
                            "(cuda:LOCAL_RANK): leave --device at auto or cuda, and choose GPUs with "
                            "CUDA_VISIBLE_DEVICES")
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        backend = "nccl"
    torch.distributed.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return True


def is_initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if is_initialized() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the process that validates, writes checkpoints and records, and shows progress."""
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        torch.distributed.barrier()


def shutdown() -> None:
    """Leave the process group (each rank once, at the end of its work)."""
    if is_initialized():
        torch.distributed.destroy_process_group()


def check_batch_split(batch_size: int, world: int) -> None:
    """The global batch must split evenly: every rank's loss is then a mean over equally many lines, and the
    mean over ranks of those means is the global batch's mean loss."""
    if batch_size % world:
        raise UserError(f"train.batch_size {batch_size} is the global batch and must be divisible by the "
                        f"{world} processes (each takes batch_size / {world} lines a step)")


def shard(keys: list, rank: int, world: int) -> list:
    """This rank's part of one global batch: every ``world``-th key from ``rank``. The union over ranks is the
    global batch, and each key keeps its augmentation draw, so the lines are those of a one-process run."""
    return keys[rank::world]


def agree(loss: float, stop: bool) -> tuple[float, bool]:
    """``(mean loss over ranks, whether any rank wants to stop)``: one all-reduce per training step, so every
    rank records the same loss and stops at the same step (a rank that stopped alone would leave the others
    waiting in their next collective). A non-finite loss on any rank makes the mean non-finite on all.
    Without a process group it returns its arguments."""
    world = world_size()
    if world == 1:
        return loss, stop
    both = torch.tensor([loss, float(stop)], dtype=torch.float64, device=_collective_device())
    torch.distributed.all_reduce(both)
    total, stops = both.tolist()
    return total / world, stops > 0


def gather_rng_states() -> list[dict] | None:
    """Every rank's torch RNG states (its dropout stream), for rank 0's checkpoint: a resumed data-parallel
    run then draws the same dropout masks as an uninterrupted one. A collective: every rank calls it."""
    if world_size() == 1:
        return None
    own = {"rng": torch.get_rng_state(),
           "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None}
    states: list = [None] * world_size()
    torch.distributed.all_gather_object(states, own)
    return states


def set_rng_state(state: dict) -> None:
    """Restore one rank's entry of :func:`gather_rng_states` (its CUDA state on this rank's current GPU)."""
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng"])


class _LossForward(nn.Module):
    """Makes the model contract's ``loss(batch)`` a module's forward, so DistributedDataParallel sees the
    call: its hooks then average the gradients over ranks during backward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch) -> torch.Tensor:
        return self.model.loss(batch)


def data_parallel_loss(model: nn.Module) -> nn.Module:
    """``model.loss`` wrapped in DistributedDataParallel (the model stays the object that is validated and
    saved: the wrapper shares its parameters). ``device_ids`` stays None: the model is already on this
    rank's device and batches are moved there by the training loop, so DDP need not copy its inputs.
    BatchNorm statistics stay per rank (SyncBatchNorm needs GPUs: it refuses CPU tensors)."""
    return nn.parallel.DistributedDataParallel(_LossForward(model), device_ids=None)


def _collective_device() -> torch.device:
    """nccl reduces CUDA tensors only (on this rank's GPU); gloo CPU ones."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
