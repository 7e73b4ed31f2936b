"""The cost columns of the detector table: FLOPs per page and the memory of a training step."""

from __future__ import annotations

import copy

import torch
from torch.utils.data import Dataset

from ..runtime import autocast, resolve_device


def detector_cost(model, dataset: Dataset, batch_size: int = 8, device: str = "auto", precision: str = "fp32"
                  ) -> dict:
    """Cost columns of the detector table: GFLOPs of one forward pass over a page of the model's size
    (portrait, 3:4), and the memory of one training step at ``batch_size`` in ``precision`` (the training
    precision: autocast halves most activations): peak CUDA memory on a GPU, the bytes autograd saves for
    backward (activations) on a CPU. Uses :mod:`ocrbench.profile`; a measurement that fails is left out with
    its error, never raised (bf16/fp16 on a CPU: refused, as in training)."""
    out: dict = {}
    try:
        from ..profile import count_flops, cuda_peak_memory, saved_activation_bytes
    except ImportError as e:  # the profile package is optional here
        return {"cost_error": f"ocrbench.profile unavailable: {e}"}
    dev = resolve_device(device)
    side = model.info.input_height
    multiple = model.info.min_width
    page = torch.zeros(1, 1, side, -(-int(0.75 * side) // multiple) * multiple)
    try:
        count = count_flops(copy.deepcopy(model).cpu(), page)
        out.update(gflops_per_page=round(count.flops / 1e9, 4), flops_page_size=list(page.shape[-2:]))
        if count.uncounted_matmul_ops:
            out["flops_uncounted_ops"] = count.uncounted_matmul_ops
    except Exception as e:
        out["flops_error"] = f"{type(e).__name__}: {e}"
    try:
        probe = copy.deepcopy(model).to(dev).train()  # a copy: a training step moves batch-norm statistics
        batch = probe.collate([dataset[i % len(dataset)] for i in range(batch_size)]).to(dev)

        def loss() -> torch.Tensor:
            with autocast(dev, precision):
                return probe.loss(batch)

        if dev.type == "cuda":
            with cuda_peak_memory(dev) as mem:
                loss().backward()
            out["peak_memory_mib"] = round(mem["allocated"] / 2**20, 1)
        else:
            nbytes, _ = saved_activation_bytes(loss, exclude=list(probe.parameters()))
            out["activation_memory_mib"] = round(nbytes / 2**20, 1)
        out.update(memory_batch_size=batch_size, memory_precision=precision)
    except Exception as e:
        out["memory_error"] = f"{type(e).__name__}: {e}"
    return out
