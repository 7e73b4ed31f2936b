import pytest

from ocrbench.profile import PEAKS, ProfileSpec, make_workload, mfu, peak_flops, profile_model
from ocrbench.profile.runner import mfu_fields


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


def test_compiled_and_checkpointed_rows_are_credited_the_models_flops():
    """MFU counts the model's FLOPs (3 × forward for training) whatever ran: a checkpointed or compiled step
    gets no credit for recomputation, so at the same speed its MFU is the same, and lower when it is slower."""
    h100 = "NVIDIA H100 80GB HBM3"
    row = {"mode": "train", "precision": "bf16", "flops_per_line_train": 2e9, "samples_per_s": 1000.0,
           "compiled_samples_per_s": 1500.0}
    fields = mfu_fields(row, h100)
    assert fields["mfu"] == pytest.approx(3 * 2e9 * 1000 / 989.5e12, abs=1e-5)
    assert fields["compiled_mfu"] == pytest.approx(1.5 * fields["mfu"], abs=1e-5)
    assert fields["compiled_achieved_tflops"] == pytest.approx(9.0)
    assert mfu_fields({**row, "grad_checkpointing": True}, h100) == fields
    assert mfu_fields({**row, "samples_per_s": 500.0}, h100)["mfu"] == pytest.approx(fields["mfu"] / 2, abs=1e-5)


def test_checkpointing_recomputes_work_that_the_flops_basis_leaves_out():
    """A checkpointed training step executes more FLOPs (the forward of each checkpointed stage runs again in
    backward), while the rows' FLOPs basis, the one MFU uses, is the same with and without checkpointing."""
    from torch.utils.flop_counter import FlopCounterMode

    workload = make_workload("line_cnn_tiny", height=32, width=64)
    batch = workload.batch(2)

    def executed(checkpointing: bool) -> int:
        workload.model.set_grad_checkpointing(checkpointing)
        with FlopCounterMode(display=False) as counter:
            workload.loss(batch).backward()
        return counter.get_total_flops()

    plain, checkpointed = executed(False), executed(True)
    assert checkpointed > plain
    specs = [ProfileSpec("train", 2, grad_checkpointing=ckpt, warmup=0, iters=1) for ckpt in (False, True)]
    off, on = profile_model("line_cnn_tiny", specs, device="cpu", height=32, width=64)
    assert off["flops_per_line_train"] == on["flops_per_line_train"] > 0
    # what is recomputed is the checkpointed stages' forward: at most the whole forward of the 2 lines
    assert 0.5 * 2 * off["flops_per_line_train"] < checkpointed - plain <= 2 * off["flops_per_line_train"]
