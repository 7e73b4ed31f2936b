"""`ocrbench selftest`: the CPU subset passes end to end, and every check can fail (forced by monkeypatching
the code whose premise it checks). The CUDA-only checks are tested through their judging functions and with
their measurements faked, since CI has no GPU."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.utils.checkpoint import checkpoint

import ocrbench.diagnostics.selftest as st
import ocrbench.harness.checkpoint as checkpoint_mod
import ocrbench.models._blocks as blocks
from ocrbench.cli import main
from ocrbench.diagnostics.selftest import FAIL, PASS, SKIP, WARN, CheckResult, PlannedCheck

CPU = torch.device("cpu")
FAKE_CUDA = torch.device("cuda")  # only passed to code whose measurement is faked: nothing runs on it


pytestmark = pytest.mark.usefixtures("one_thread")


# ---- the CPU subset, end to end through the CLI --------------------------------------------------------------
def test_cpu_subset_passes_and_writes_a_stamped_report(tmp_path, capsys):
    """What CI runs (`--threads 1`, see docs/selftest.md)."""
    out = tmp_path / "cpu.json"
    torch.set_num_threads(2)
    code = main(["selftest", "--device", "cpu", "--threads", "1", "--out", str(out)])
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    tiny = st.selftest_models(CPU)
    assert code == 0 and not report["failed"]
    assert tiny and all(n.endswith("_tiny") for n in tiny)
    for name in tiny:
        assert statuses[f"dtypes:{name}"] == PASS and statuses[f"grad_checkpointing:{name}"] == PASS
    assert statuses["resume"] == PASS
    assert statuses["timing_sync"] == statuses["peak_memory"] == statuses["mfu"] == SKIP
    mfu = next(c for c in report["checks"] if c["name"] == "mfu")
    assert mfu["measured"]["flops_per_s"] > 1e8  # any CPU does 0.1 GFLOP/s
    for key in ("device_name", "torch", "git", "time"):
        assert report[key], key
    assert report["threads"] == 1 and torch.get_num_threads() == 2  # recorded, then restored
    assert "PASS  resume" in text and f"report: {out}" in text
    assert report["seconds"] < 60  # CI runs it (about 4 s on one idle core)


def test_any_fail_exits_1_and_the_report_goes_to_local_selftest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(st, "plan_checks", lambda device: [
        PlannedCheck("ok", lambda: CheckResult("ok", PASS, "fine")),
        PlannedCheck("broken", lambda: CheckResult("broken", FAIL, "forced"))])
    assert main(["selftest", "--device", "cpu"]) == 1
    report = json.loads((tmp_path / "local" / "selftest" / "cpu.json").read_text())
    assert report["counts"] == {"PASS": 1, "WARN": 0, "FAIL": 1, "SKIP": 0} and report["failed"]
    assert "FAIL  broken" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(capsys):
    assert main(["selftest", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA device" in err


def test_check_errors_become_fail_and_missing_modes_skip():
    def boom():
        raise RuntimeError("broken")

    def missing():
        raise NotImplementedError("no checkpointing")

    assert st.run_check(PlannedCheck("a", boom)).status == FAIL
    assert st.run_check(PlannedCheck("b", missing)).status == SKIP


# ---- which checks run where ----------------------------------------------------------------------------------
def test_cuda_plan_uses_the_full_models_and_three_precisions():
    cuda_models, cpu_models = st.selftest_models(FAKE_CUDA), st.selftest_models(CPU)
    assert "crnn" in cuda_models and not any(n.endswith("_tiny") for n in cuda_models)
    assert {n.removesuffix("_tiny") for n in cpu_models} <= {n.removesuffix("_small") for n in cuda_models}
    assert st.dtype_precisions(FAKE_CUDA) == ("fp32", "bf16", "fp16") and st.dtype_precisions(CPU) == ("fp32", "bf16")
    names = [c.name for c in st.plan_checks(FAKE_CUDA)]  # planning touches no device
    assert names[-4:] == ["resume", "timing_sync", "peak_memory", "mfu"]
    assert len(names) == 2 * len(cuda_models) + 4
    assert st.RESUME_MODEL["cuda"] in cuda_models and st.RESUME_MODEL["cpu"] in cpu_models


# ---- 1. dtypes -----------------------------------------------------------------------------------------------
def test_layer_families_and_dtypes_of_outputs():
    assert st.layer_family(nn.LSTMCell(2, 2)) == st.layer_family(nn.GRU(2, 2)) == "rnn"
    assert st.layer_family(nn.BatchNorm2d(2)) == st.layer_family(nn.LayerNorm(2)) == "norm"
    assert st.layer_family(nn.Conv1d(1, 1, 1)) == "conv" and st.layer_family(nn.ReLU()) is None
    packed = pack_padded_sequence(torch.zeros(2, 3, 4, dtype=torch.float16), torch.tensor([3, 2]), batch_first=True)
    assert st.floating_dtypes((packed, (torch.zeros(1), torch.zeros(1, dtype=torch.long)))) == {
        torch.float16, torch.float32}


def test_dtypes_fail_when_fp32_is_not_float32(monkeypatch):
    real = st.precision_context
    monkeypatch.setattr(st, "precision_context", lambda device, precision: real(device, "bf16"))
    result = st.check_dtypes("line_cnn_tiny", CPU)
    assert result.status == FAIL and "fp32 conv -> bfloat16" in result.detail


def _cuda_like_autocast(monkeypatch):
    """CPU autocast made to act as CUDA's where they differ: cuDNN RNNs come out in float16 whatever the
    autocast dtype, and a linear layer casts a float16 input to the autocast dtype (CPU autocast leaves it)."""
    lstm_forward, linear_forward = nn.LSTM.forward, nn.Linear.forward

    def lstm(self, input, hx=None):
        out, hc = lstm_forward(self, input, hx)
        if torch.is_autocast_enabled("cpu"):
            out = out._replace(data=out.data.half()) if isinstance(out, PackedSequence) else out.half()
        return out, hc

    def linear(self, input):
        if torch.is_autocast_enabled("cpu") and input.dtype == torch.float16:
            input = input.to(torch.get_autocast_dtype("cpu"))
        return linear_forward(self, input)

    monkeypatch.setattr(nn.LSTM, "forward", lstm)
    monkeypatch.setattr(nn.Linear, "forward", linear)


def test_dtypes_fail_when_an_rnn_runs_in_fp16_under_bf16(monkeypatch):
    _cuda_like_autocast(monkeypatch)
    assert st.check_dtypes("crnn_tiny", CPU).status == PASS  # the BiLSTM runs outside autocast
    monkeypatch.setattr(blocks, "autocast_off", lambda x: contextlib.nullcontext())  # LSTMs under autocast
    try:
        result = st.check_dtypes("crnn_tiny", CPU)
    except RuntimeError as e:  # measured on an AVX2 EPYC: oneDNN has no fp16 LSTM without AVX-512
        if "primitive descriptor" not in str(e):
            raise
        pytest.skip("this CPU's oneDNN cannot run an LSTM in fp16 (no AVX-512): the wrong cast cannot be run")
    assert result.status == FAIL and "bf16 rnn -> float16" in result.detail
    assert "float16" in result.measured["bf16"]["rnn"] and result.measured["fp32"]["rnn"] == ["float32"]


def test_autocast_that_lowers_nothing_warns():
    families = {"conv": ["float32"], "linear": ["float32"]}
    assert st.judge_dtypes({"fp32": families, "bf16": families})[0] == WARN
    assert st.judge_dtypes({"bf16": {"conv": ["bfloat16"], "rnn": ["bfloat16"]}})[0] == WARN  # not the stated fp32


# ---- 2. gradient checkpointing -------------------------------------------------------------------------------
def test_grad_checkpointing_fails_when_recomputation_differs(monkeypatch):
    monkeypatch.setattr(blocks, "checkpoint", lambda fn, *args, **kwargs: fn(*args) * 1.01)
    result = st.check_grad_checkpointing("crnn_tiny", CPU)
    assert result.status == FAIL and result.measured["dropout_off"]["outside"]


class _DropoutNet(nn.Module):
    """Dropout inside a checkpointed region whose recomputation draws a new mask (RNG state not preserved)."""

    def __init__(self):
        super().__init__()
        self.lin, self.drop, self.ckpt = nn.Linear(8, 8), nn.Dropout(0.5), False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.ckpt = enable

    def forward(self, x):
        stage = lambda t: self.drop(self.lin(t))  # noqa: E731
        y = checkpoint(stage, x, use_reentrant=False, preserve_rng_state=False) if self.ckpt else stage(x)
        return y.square().sum()


def test_dropout_redrawn_by_recomputation_warns_and_dropout_off_is_equal():
    model, x = _DropoutNet().train(), torch.randn(16, 8)
    off = st.checkpointing_comparison(model, lambda: model(x), dropout=False)
    on = st.checkpointing_comparison(model, lambda: model(x), dropout=True)
    assert not off["outside"] and off["max_rel_diff"] == 0 and on["outside"]
    status, detail = st.judge_checkpointing(off, on)
    assert status == WARN and "dropout masks" in detail


def test_dropout_disabled_is_eval_mode_dropout_only():
    torch.manual_seed(0)
    lstm, drop = nn.LSTM(4, 4, num_layers=2, dropout=0.5, batch_first=True), nn.Dropout(0.5)
    model, x, q = nn.ModuleList([lstm, drop]), torch.randn(2, 5, 4), torch.randn(1, 2, 5, 4)

    def run(attention_dropout: float):  # dropout_p passed positionally, as some callers do
        return lstm(drop(x))[0] + F.scaled_dot_product_attention(q, q, q, None, attention_dropout).sum()

    reference = run(0.0) if model.eval() else None  # eval mode: no dropout anywhere
    model.train()
    with st.dropout_disabled(model):
        assert torch.equal(run(0.9), reference)
    assert lstm.dropout == 0.5 and not torch.equal(run(0.9), reference)  # restored afterwards


# ---- 3. resume -----------------------------------------------------------------------------------------------
def test_resume_fails_when_the_rng_state_is_not_restored(monkeypatch):
    real = checkpoint_mod.restore

    def forgetful(*args, **kwargs):
        state = real(*args, **kwargs)
        torch.manual_seed(12345)  # as if the checkpoint had no RNG state: dropout and augmentation move
        return state

    monkeypatch.setattr(checkpoint_mod, "restore", forgetful)
    result = st.check_resume(CPU)
    assert result.status == FAIL and "not bit-exact" in result.detail
    assert result.measured["resumed"]["tensors_differing"] > 0


def test_resume_fails_when_the_interruption_never_happens(monkeypatch):
    """Otherwise the "resumed" run would just load the finished checkpoint and match trivially."""
    monkeypatch.setattr(st._InterruptAt, "on_step", lambda self, *args: None)
    result = st.check_resume(CPU)
    assert result.status == FAIL and "not interrupted" in result.detail


def test_resume_tolerance_on_cuda():
    exact = {"max_rel_diff": 0.0, "tensors_differing": 0, "tensors": 10}
    small = {**exact, "max_rel_diff": 1e-6, "tensors_differing": 4}
    large = {**exact, "max_rel_diff": 3e-3, "tensors_differing": 10}
    assert st.judge_resume("cpu", small, None)[0] == FAIL  # a CPU must be bit-exact
    assert st.judge_resume("cuda", small, exact)[0] == PASS
    assert st.judge_resume("cuda", large, exact)[0] == FAIL
    assert st.judge_resume("cuda", large, large)[0] == WARN  # straight runs differ as much: not resume's fault


# ---- 4-6. timing, memory, MFU --------------------------------------------------------------------------------
def test_sync_timing_judgement():
    base = {"unsynced_s": 1e-5, "synced_s": 2e-3, "harness_median_s": 2.1e-3}
    assert st.judge_sync_timing(base)[0] == PASS
    assert st.judge_sync_timing({**base, "harness_median_s": 1e-5})[0] == FAIL  # harness timed launches
    assert st.judge_sync_timing({**base, "unsynced_s": 1.9e-3})[0] == WARN  # launches block


def test_sync_timing_measures_on_any_device_and_skips_on_cpu(monkeypatch):
    m = st.measure_sync_timing(CPU, 64, 3)
    assert 0 < m["unsynced_s"] <= m["synced_s"] and m["harness_median_s"] > 0
    assert st.check_timing_sync(CPU).status == SKIP
    faked = {"unsynced_s": 1e-5, "synced_s": 2e-3, "harness_median_s": 2e-3}
    monkeypatch.setattr(st, "measure_sync_timing", lambda device, n, iters: faked)
    assert st.check_timing_sync(FAKE_CUDA).status == PASS


def test_peak_memory_judgement(monkeypatch):
    n = st.PEAK_MEMORY_BYTES
    assert st.judge_peak_memory({"nbytes": n, "allocated": n, "reserved": n})[0] == PASS
    assert st.judge_peak_memory({"nbytes": n, "allocated": n, "reserved": 0})[0] == WARN  # carved from the cache
    assert st.judge_peak_memory({"nbytes": n, "allocated": n + 512, "reserved": n})[0] == FAIL
    assert st.check_peak_memory(CPU).status == SKIP
    monkeypatch.setattr(st, "measure_peak_memory", lambda device: {"nbytes": n, "allocated": 0, "reserved": 0})
    assert st.check_peak_memory(FAKE_CUDA).status == FAIL


def test_mfu_judgement_against_the_peak_table(monkeypatch):
    peak = 989.5e12
    assert st.judge_mfu(0.6 * peak, peak, "NVIDIA H200")[0] == PASS
    assert st.judge_mfu(0.1 * peak, peak, "NVIDIA H200")[0] == WARN
    assert st.judge_mfu(1.5 * peak, peak, "NVIDIA H200")[0] == WARN
    assert st.judge_mfu(1e14, None, "Some GPU")[0] == WARN
    monkeypatch.setattr(st, "measure_matmul_flops", lambda device, n, iters: {"flops_per_s": 0.7 * peak})
    monkeypatch.setattr(st, "device_name", lambda device: "NVIDIA H200")
    result = st.check_mfu(FAKE_CUDA)
    assert result.status == PASS and result.measured["mfu"] == pytest.approx(0.7)

