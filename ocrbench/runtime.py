"""Runtime helpers shared by training, evaluation and profiling: devices, precision, threads."""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import UserError


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask (taskset, SLURM and container CPU sets narrow it),
    not the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but torch sees no CUDA device (torch.cuda.is_available() "
                        "is False)")
    return device


def autocast(device: torch.device, precision: str):
    """Autocast context for ``precision``. bf16/fp16 are GPU paths: on CPU they are refused because LSTMs
    under CPU autocast fail or run tens of times slower, which would make timings meaningless."""
    if precision in ("fp32", "tf32"):
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise UserError(f"precision {precision} needs a CUDA device; use fp32 on {device.type}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def set_matmul_precision(device: torch.device, precision: str) -> None:
    """tf32 allows TensorFloat-32 matmuls/convs on Ampere+; every other precision keeps full fp32 matmuls."""
    if device.type == "cuda":
        allow = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow


# cuDNN and cuBLAS report a failed allocation as a plain RuntimeError, not torch.cuda.OutOfMemoryError
OOM_MESSAGES = ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED",
                "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` means the device ran out of memory (the caller may back off the batch size)."""
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and any(m in str(error) for m in OOM_MESSAGES))


def set_deterministic(enable: bool) -> None:
    """Deterministic kernels where torch has them (``train.deterministic``). On a CPU ocrbench's training is
    bit-reproducible anyway. On a GPU this selects deterministic cuDNN convolutions and cuBLAS workspaces
    (``CUBLAS_WORKSPACE_CONFIG`` must be set before CUDA starts: it is set here for a fresh process; export it
    yourself otherwise); ops with no deterministic CUDA kernel, above all the CTC loss's backward (atomics),
    only warn (``warn_only``), so a CTC model's GPU training stays run-to-run noisy even in this mode."""
    if enable:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enable, warn_only=True)
    torch.backends.cudnn.deterministic = enable
    if enable:
        torch.backends.cudnn.benchmark = False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
