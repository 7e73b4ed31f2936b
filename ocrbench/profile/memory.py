"""Memory figures: CUDA peak memory, and a device-independent count of the activations kept for backward.

The CUDA figure (``max_memory_allocated`` after ``reset_peak_memory_stats``) is what a training step really
needs on that GPU, but CI has no GPU. The saved-activation figure counts the bytes of every tensor autograd
saves for backward during a forward pass (``torch.autograd.graph.saved_tensors_hooks``), once per storage and
without the parameters. It depends only on the model and input shape, so the effect of gradient checkpointing
is visible on a CPU: non-reentrant checkpointing replaces the tensors saved inside a checkpointed stage with
placeholders (its own, inner hooks) and keeps only the stage inputs, which this count sees.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

MIB = 2**20


def _storage_key(t: torch.Tensor) -> tuple[int, int]:
    """(address, bytes) of the storage behind ``t``; views of one storage share the address."""
    try:
        storage = t.untyped_storage()
        return storage.data_ptr(), storage.nbytes()
    except (RuntimeError, NotImplementedError):  # tensors without a plain storage (mkldnn, subclasses)
        return id(t), t.numel() * t.element_size()


def saved_activation_bytes(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> tuple[int, Any]:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs.

    Args:
        fn: a forward pass (with grad enabled), e.g. ``lambda: model.loss(batch)``.
        exclude: tensors not to count, normally ``model.parameters()`` (weights are saved too, but they are
            not activations).
    Returns:
        ``(bytes, fn())``; each storage is counted once, whatever number of views of it were saved.
    """
    excluded = {_storage_key(t)[0] for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        address, nbytes = _storage_key(t)
        if address not in excluded:
            seen[address] = max(seen.get(address, 0), nbytes)
        return t  # keeps the tensor alive, so no storage is freed and its address reused during fn()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def release_cached_memory(device: torch.device | str) -> None:
    """Free what earlier code left: unreachable tensors (``gc``) and the blocks the caching allocator keeps.
    Without it the reserved figure of a measurement includes cached blocks of whatever ran before (it then
    depends on run order), and fragmentation left by earlier work can raise the next one's reservation."""
    device = torch.device(device)
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()


@contextlib.contextmanager
def cuda_peak_memory(device: torch.device | str, empty_cache: bool = True) -> Iterator[dict]:
    """Peak CUDA memory of the enclosed code: yields a dict that is filled on exit with
    ``allocated`` (``max_memory_allocated``, the main figure) and ``reserved`` (``max_memory_reserved``), bytes.

    ``empty_cache``: first :func:`release_cached_memory`. ``False`` when the caller did that itself before
    untimed warm-up steps (so that timed steps do not pay for fresh ``cudaMalloc`` calls)."""
    device = torch.device(device)
    stats: dict = {}
    if empty_cache:
        release_cached_memory(device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield stats
    torch.cuda.synchronize(device)
    stats["allocated"] = torch.cuda.max_memory_allocated(device)
    stats["reserved"] = torch.cuda.max_memory_reserved(device)
