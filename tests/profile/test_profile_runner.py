"""Profile rows: fields, n/a and error rows, batch back-off, suite integration and the leaderboard join."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ocrbench.config import ModelEntry, load_suite
from ocrbench.errors import UserError
from ocrbench.profile import PROFILES_FILE, ProfileSpec, expand_models, profile_many, profile_model
from ocrbench.profile.runner import _with_backoff, smaller_batch
from ocrbench.records import read_records

FAST = dict(warmup=1, iters=2)
SHAPE = dict(height=32, width=128)


def test_rows_are_complete_and_checkpointing_saves_activations():
    specs = [ProfileSpec("infer", 2, **FAST), ProfileSpec("train", 2, **FAST),
             ProfileSpec("train", 2, grad_checkpointing=True, **FAST), ProfileSpec("train", 2, "bf16", **FAST)]
    infer, train, train_ckpt, bf16 = profile_model("crnn_tiny", specs, device="cpu", **SHAPE)
    for row in (infer, train, train_ckpt):
        assert row["status"] == "ok", row.get("error")
        assert row["samples_per_s"] == pytest.approx(2 / (row["step_ms_median"] / 1e3), rel=1e-3)
        assert row["input_shape"] == [2, 1, 32, 128] and row["timed_steps"] == 2 and row["warmup_steps"] == 1
        for key in ("device_name", "torch", "threads", "git", "precision", "channels_last", "grad_checkpointing",
                    "batch_size", "macs_per_line_infer", "flops_per_line_infer", "params"):
            assert key in row, key
        assert row["flops_per_line_infer"] == 2 * row["macs_per_line_infer"] > 0
        assert row["uncounted_matmul_ops"] == {}
    assert "saved_activation_mib" not in infer
    assert train_ckpt["saved_activation_mib"] < train["saved_activation_mib"]
    assert bf16["status"] == "n/a" and "CPU" in bf16["reason"]  # autocast is never timed on a CPU
    assert "mfu" not in train  # no peak on a CPU


def test_a_failure_is_a_row_and_the_run_goes_on():
    rows = profile_many(["line_cnn_tiny"], [ProfileSpec("infer", 2, **FAST)], device="cpu",
                        model_kwargs={"no_such_argument": 1}, **SHAPE)
    assert rows[0]["status"] == "error" and "no_such_argument" in rows[0]["error"]
    rows = profile_many(["crnn_tiny", "line_cnn_tiny"], [ProfileSpec("infer", 2, channels_last=True, **FAST)],
                        device="cpu", count_macs=False, **SHAPE)
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[0]["channels_last"]


def test_oom_backs_off_the_batch_size():
    tried = []

    def run(batch_size):
        tried.append(batch_size)
        if batch_size > 24:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return {"batch_size": batch_size}

    assert _with_backoff(run, 64, torch.device("cuda"))["batch_size"] == 24
    assert tried == [64, 48, 32, 24]
    assert [smaller_batch(b) for b in (8, 5, 2, 1)] == [4, 2, 1, 0]


def test_model_names():
    assert "crnn" in expand_models(["all"]) and not any(n.endswith("_tiny") for n in expand_models(["all"]))
    assert expand_models(["crnn_t*", "crnn_tiny", "crnn", "timm:resnet18"]) == ["crnn_tiny", "crnn", "timm:resnet18"]
    with pytest.raises(UserError, match="crnn"):
        expand_models(["crnm"])


def test_a_timm_model_profiles():
    (row,) = profile_model("timm:resnet18", [ProfileSpec("infer", 1, **FAST)], device="cpu", height=32)
    assert row["status"] == "ok" and row["input_shape"] == [1, 3, 32, 32]
    # resnet18 at 32×32: 1/49 of its 1.81 GMACs at 224×224, conv and fc only
    assert 30e6 < row["macs_per_line_infer"] < 45e6


def test_suite_profiles_each_model_and_the_leaderboard_shows_it(tmp_path):
    from ocrbench.bench.suite import run_suite
    from ocrbench.report.leaderboard import write_report

    cfg = load_suite(None, {"name": "t", "data.train_size": 8, "data.test_size": 4, "data.height": 32,
                            "train.steps": 1, "train.batch_size": 4, "train.device": "cpu",
                            "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")})
    cfg = replace(cfg, models=(ModelEntry("line_cnn_tiny"),))
    assert [o.status for o in run_suite(cfg, progress=False, log=lambda *_: None)] == ["ok"]
    rows = read_records(tmp_path / "results" / PROFILES_FILE)
    run = read_records(tmp_path / "results" / "runs.jsonl")[0]
    assert [(r["mode"], r["grad_checkpointing"]) for r in rows] == [("infer", False), ("train", False),
                                                                     ("train", True)]
    assert all(r["status"] == "ok" and r["config_hash"] == run["config_hash"] for r in rows)
    assert rows[0]["width"] == 16 * 32  # the reference shape
    md = open(write_report(tmp_path / "results", plot=False)["markdown"]).read()
    assert "GMACs/line" in md and "Mem train, ckpt off → on" in md and "MiB/line act." in md
    assert "MiB/line act." in md

    no_profile = replace(cfg, profile=False, results_dir=str(tmp_path / "other"))
    run_suite(no_profile, progress=False, log=lambda *_: None)
    assert not (tmp_path / "other" / PROFILES_FILE).exists()


def test_a_suite_profile_times_the_suites_own_training_recipe(monkeypatch):
    """The timed training step uses the suite's optimizer settings, not a second set of defaults."""
    import ocrbench.harness.train as train_mod
    from ocrbench.config import TrainConfig
    from ocrbench.profile.runner import suite_profile

    seen = []
    make_optimizer = train_mod.make_optimizer
    monkeypatch.setattr(train_mod, "make_optimizer", lambda model, cfg: seen.append(cfg) or make_optimizer(model, cfg))
    recipe = TrainConfig(lr=0.0123, weight_decay=0.0, grad_clip=1.5, device="cpu", batch_size=2, eval_batch_size=2)
    rows = suite_profile("line_cnn_tiny", recipe, 32)
    assert all("error" not in r for r in rows) and seen and all(cfg is recipe for cfg in seen)
