"""torch.compile beside eager: one tiny model really compiled (inductor, mode default), and a model that fails
to compile gets the error in its row while the profile goes on."""

from __future__ import annotations

import json

import pytest

import ocrbench.profile.compiled as compiled
from ocrbench.cli import main
from ocrbench.profile import ProfileSpec, profile_model

SHAPE = dict(height=32, width=64)


def test_a_tiny_model_compiles_and_is_timed_beside_eager():
    spec = ProfileSpec("infer", 2, warmup=1, iters=3, compile="default")
    (row,) = profile_model("line_cnn_tiny", [spec], device="cpu", **SHAPE)
    assert row["status"] == "ok" and "compile_error" not in row, row.get("compile_error")
    assert row["compile_mode"] == "default" and row["compile_s"] > 0
    assert row["compiled_samples_per_s"] > 0 and row["samples_per_s"] > 0
    assert row["compiled_samples_per_s"] == pytest.approx(2 / (row["compiled_step_ms_median"] / 1e3), rel=1e-3)


def test_a_compile_failure_is_the_rows_error_and_the_profile_goes_on(monkeypatch, capsys):
    calls = []

    def broken_compile(fn, mode=None):
        def run(*args, **kwargs):
            calls.append(mode)
            raise RuntimeError("inductor: no kernel for this op\n(pages of detail)")
        return run

    monkeypatch.setattr(compiled.torch, "compile", broken_compile)
    code = main(["profile", "--model", "line_cnn_tiny,crnn_tiny", "--mode", "infer,train", "--height", "32",
                 "--width", "64", "--batch-size", "1", "--warmup", "0", "--iters", "1", "--device", "cpu",
                 "--compile", "--no-save", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == 4 and calls == ["default"] * 4
    for row in rows:  # eager numbers stand; the error is one line
        assert row["status"] == "ok" and row["samples_per_s"] > 0
        assert row["compile_error"] == "RuntimeError: inductor: no kernel for this op (pages of detail)"
        assert "compiled_samples_per_s" not in row
    assert main(["profile", "--model", "line_cnn_tiny", "--mode", "infer", "--height", "32", "--width", "64",
                 "--batch-size", "1", "--warmup", "0", "--iters", "1", "--device", "cpu", "--compile",
                 "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "compiled lines/s" in out and "failed: RuntimeError: inductor" in out and "compile s" in out


def test_an_unknown_compile_mode_is_a_user_error(capsys):
    assert main(["profile", "--model", "line_cnn_tiny", "--compile", "fastest", "--no-save"]) == 2
    assert "reduce-overhead" in capsys.readouterr().err
