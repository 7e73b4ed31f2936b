import pytest

from ocrbench.profile import PEAKS, mfu, peak_flops


@pytest.mark.parametrize("name,precision,tflops", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.5), ("NVIDIA H100 80GB HBM3", "fp32", 67.0),
    ("NVIDIA H100 PCIe", "bf16", 756.5), ("NVIDIA H100 NVL", "fp16", 835.5),
    ("NVIDIA H200", "tf32", 494.5), ("NVIDIA H200 NVL", "bf16", 835.5),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312.0), ("NVIDIA A100 80GB PCIe", "tf32", 156.0),
    ("NVIDIA L4", "bf16", 121.0), ("NVIDIA L40S", "bf16", 362.05), ("NVIDIA A10", "fp16", 125.0),
    ("NVIDIA GeForce RTX 4090", "fp16", 165.2), ("Tesla T4", "fp16", 65.0),
    ("Tesla T4", "tf32", 8.1),  # no TF32 on Turing: PyTorch runs fp32
    ("Tesla V100-SXM2-16GB", "fp16", 125.0),
])
def test_dense_peaks(name, precision, tflops):
    assert peak_flops(name, precision) == pytest.approx(tflops * 1e12)


def test_unknown_devices_and_missing_precisions_are_none():
    assert peak_flops("AMD EPYC", "fp32") is None
    assert peak_flops("Tesla T4", "bf16") is None
    assert mfu(1e9, 100.0, "Some Future GPU", "bf16", training=True) is None


def test_every_peak_has_a_source():
    assert all(p.source and p.fp32 > 0 for p in PEAKS)


def test_mfu_counts_three_forwards_for_training():
    # 1 GFLOP per line forward at 1000 lines/s on an A100 in bf16 (312 TFLOP/s)
    assert mfu(1e9, 1000.0, "NVIDIA A100-SXM4-40GB", "bf16", training=False) == pytest.approx(1e12 / 312e12)
    assert mfu(1e9, 1000.0, "NVIDIA A100-SXM4-40GB", "bf16", training=True) == pytest.approx(3e12 / 312e12)
