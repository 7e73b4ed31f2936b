"""Model FLOPs utilisation: achieved FLOP/s over the device's dense peak for the precision used.

MFU (Chowdhery et al. 2022, PaLM, appendix B) counts only the model's own FLOPs: a training step is taken as
3 × the forward FLOPs (forward + a backward twice as costly) and recomputation by gradient checkpointing is
not counted, so checkpointing lowers MFU. Inference counts the forward FLOPs.

Peaks are the vendors' datasheet numbers in TFLOP/s, **dense** (NVIDIA lists Tensor Core numbers "with
sparsity"; the dense figure is half of that). ``fp32`` is the non-tensor-core FP32 rate (ocrbench's fp32 turns
TF32 off); ``tf32``, ``bf16`` and ``fp16`` are tensor-core rates with FP32 accumulation (what autocast uses;
GeForce cards run FP16 with FP16 accumulation twice as fast, which PyTorch does not use). A precision the
device lacks is ``None``; an unknown device gives ``None`` (``n/a`` in tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DevicePeak:
    pattern: str  # regex searched in torch.cuda.get_device_name()
    fp32: float
    tf32: float | None
    bf16: float | None
    fp16: float | None
    source: str


# More specific names first: "H100 NVL" and "H100 PCIe" before plain "H100" (the SXM part reports
# "NVIDIA H100 80GB HBM3").
PEAKS: tuple[DevicePeak, ...] = (
    DevicePeak(r"H200 NVL", 60.0, 417.5, 835.5, 835.5, "NVIDIA H200 NVL datasheet (2024)"),
    DevicePeak(r"H200", 67.0, 494.5, 989.5, 989.5, "NVIDIA H200 SXM datasheet (2024)"),
    DevicePeak(r"H100 NVL", 60.0, 417.5, 835.5, 835.5, "NVIDIA H100 datasheet (2023), NVL column"),
    DevicePeak(r"H100.*PCIe", 51.0, 378.0, 756.5, 756.5, "NVIDIA H100 datasheet (2023), PCIe column"),
    DevicePeak(r"H100", 67.0, 494.5, 989.5, 989.5, "NVIDIA H100 datasheet (2023), SXM column"),
    DevicePeak(r"A100", 19.5, 156.0, 312.0, 312.0, "NVIDIA A100 datasheet (2021), SXM and PCIe"),
    DevicePeak(r"L40S", 91.6, 183.0, 362.05, 362.05, "NVIDIA L40S datasheet (2023)"),
    DevicePeak(r"\bL4\b", 30.3, 60.0, 121.0, 121.0, "NVIDIA L4 datasheet (2023)"),
    DevicePeak(r"A10\b", 31.2, 62.5, 125.0, 125.0, "NVIDIA A10 datasheet (2021)"),
    DevicePeak(r"RTX 4090", 82.6, 82.6, 165.2, 165.2,
               "NVIDIA Ada Lovelace architecture whitepaper v2.01 (2023), appendix table, FP32 accumulate"),
    DevicePeak(r"RTX 3090", 35.6, 35.6, 71.0, 71.0,
               "NVIDIA Ampere GA102 architecture whitepaper v2.1 (2021), FP32 accumulate"),
    DevicePeak(r"\bT4\b", 8.1, None, None, 65.0, "NVIDIA T4 datasheet (2019); no TF32/BF16 on Turing"),
    DevicePeak(r"V100.*SXM|V100-SXM", 15.7, None, None, 125.0, "NVIDIA V100 datasheet (2020), SXM2"),
    DevicePeak(r"V100", 14.0, None, None, 112.0, "NVIDIA V100 datasheet (2020), PCIe"),
)


def find_peak(device_name: str) -> DevicePeak | None:
    for peak in PEAKS:
        if re.search(peak.pattern, device_name):
            return peak
    return None


def peak_flops(device_name: str, precision: str) -> float | None:
    """Dense peak FLOP/s of ``device_name`` (as ``torch.cuda.get_device_name`` spells it) in ``precision``
    (fp32, tf32, bf16, fp16); ``None`` when unknown. ``tf32`` on a GPU without TF32 falls back to fp32 (what
    PyTorch then runs)."""
    peak = find_peak(device_name)
    if peak is None:
        return None
    tflops = getattr(peak, precision)
    if tflops is None and precision == "tf32":
        tflops = peak.fp32
    return None if tflops is None else tflops * 1e12


def mfu(flops_per_sample: float, samples_per_second: float, device_name: str, precision: str,
        training: bool) -> float | None:
    """Model FLOPs utilisation in [0, 1], or ``None`` for an unknown device or a missing FLOP count.

    Args:
        flops_per_sample: forward FLOPs (2 × MACs) of one sample.
        training: count 3 × the forward FLOPs per sample (forward + backward).
    """
    peak = peak_flops(device_name, precision)
    if peak is None or not flops_per_sample:
        return None
    achieved = (3 if training else 1) * flops_per_sample * samples_per_second
    return achieved / peak
