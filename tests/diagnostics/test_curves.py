"""Training curves from run records (`ocrbench curves`) and the TensorBoard callback."""

import builtins
import json

import pytest
import torch

from ocrbench.cli import main
from ocrbench.config import TrainConfig
from ocrbench.diagnostics.curves import load_curves, plot_curves
from ocrbench.errors import UnknownNameError, UserError
from ocrbench.harness.train import train
from ocrbench.models import create_model
from ocrbench.records import append_record

pytest.importorskip("matplotlib")


pytestmark = pytest.mark.usefixtures("one_thread")


def record(model, seed, config_hash, decoder="greedy", train_curve=None, val_curve=None, **extra):
    return {"model": model, "seed": seed, "config_hash": config_hash, "status": "ok", "dataset": "synth-lines",
            "split": "test", "decoder": decoder, "train_curve": train_curve, "val_curve": val_curve or [], **extra}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    runs = folder / "runs.jsonl"
    curve = [[10, 3.5, 1e-4], [20, 2.0, 3e-3], [30, 1.2, 1e-3]]
    # one trained model owes a record per decoder: its curves must be read once
    append_record(runs, record("crnn_small", 0, "aaa", "greedy", curve, [[15, 4.0, 0.8], [30, 9.0, 0.3]]))
    append_record(runs, record("crnn_small", 0, "aaa", "beam", curve, [[15, 4.0, 0.8], [30, 9.0, 0.3]]))
    append_record(runs, record("line_cnn_small", 1, "bbb", val_curve=[[30, 5.0, 0.5]]))  # written before train_curve
    append_record(runs, {"model": "crnn_small", "seed": 2, "status": "failed", "dataset": "synth-lines",
                         "split": "test", "error": "boom"})
    append_record(runs, {"kind": "profile", "model": "crnn_small", "status": "ok"})
    return folder


def test_one_curve_per_trained_model_with_its_values(results):
    curves = load_curves(results)
    assert [c.label for c in curves] == ["crnn_small/seed 0", "line_cnn_small/seed 1"]
    crnn, line = curves
    assert crnn.steps == [10, 20, 30] and crnn.loss == [3.5, 2.0, 1.2] and crnn.lr == [1e-4, 3e-3, 1e-3]
    assert crnn.val_steps == [15, 30] and crnn.val_cer == [0.8, 0.3]
    assert line.steps == [] and line.val_cer == [0.5]


def test_model_filter_and_unknown_model(results, tmp_path):
    assert [c.model for c in load_curves(results, ["line_cnn_small"])] == ["line_cnn_small"]
    with pytest.raises(UnknownNameError, match="crnn_small, line_cnn_small"):
        load_curves(results, ["crnn_smal"])
    with pytest.raises(UserError, match="no run records"):
        load_curves(tmp_path / "nowhere")


def test_runs_of_one_model_and_seed_are_told_apart(tmp_path):
    runs = tmp_path / "runs.jsonl"
    for n, status in enumerate(["ok", "pruned"]):
        append_record(runs, record("crnn_tiny", 0, f"h{n}", val_curve=[[5, 1.0, 0.9]], trial=n, sweep_pass=1,
                                   status=status))
    append_record(runs, record("crnn_tiny", 1, "c1", val_curve=[[5, 1.0, 0.9]]))
    append_record(runs, record("crnn_tiny", 1, "c2", val_curve=[[5, 1.0, 0.7]]))
    labels = [c.label for c in load_curves(tmp_path)]
    assert labels[:2] == ["crnn_tiny/seed 0/pass 1 trial 0", "crnn_tiny/seed 0/pass 1 trial 1 (pruned)"]
    assert sorted(labels[2:]) == ["crnn_tiny/seed 1 (c1)", "crnn_tiny/seed 1 (c2)"]


def test_curves_command_writes_a_png(results, tmp_path, capsys):
    out = tmp_path / "curves.png"
    code = main(["curves", "--results", str(results), "--model", "crnn_small", "--out", str(out), "--json"])
    reply = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out.stat().st_size > 10_000
    assert [r["label"] for r in reply["runs"]] == ["crnn_small/seed 0"] and reply["runs"][0]["final_val_cer"] == 0.3


def test_plot_refuses_nothing_to_plot(tmp_path):
    with pytest.raises(UserError, match="no training curves"):
        plot_curves([], tmp_path / "x.png")


def test_tensorboard_callback_writes_loss_lr_and_val_cer(rendered_lines, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ocrbench.diagnostics.tensorboard import TensorBoardCallback

    torch.manual_seed(0)
    model = create_model("crnn_tiny", input_height=32)
    cfg = TrainConfig(steps=6, batch_size=4, device="cpu", eval_every=3, checkpoint_every=100)
    cer = iter([0.9, 0.6])
    result = train(model, rendered_lines, cfg, tmp_path / "run", progress=False, validate=lambda: next(cer),
                   callbacks=[TensorBoardCallback(tmp_path / "tb", every=2)])
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [2, 4, 6]
    assert [e.step for e in events.Scalars("train/lr")] == [2, 4, 6]
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("val/cer")] == [(3, 0.9), (6, 0.6)]
    assert loss[-1].value == pytest.approx(result.history[-1][1], abs=1e-4)


def test_tensorboard_missing_names_the_extra(monkeypatch, tmp_path):
    from ocrbench.diagnostics import tensorboard

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(UserError, match=r"pip install 'ocrbench\[tensorboard\]'"):
        tensorboard.TensorBoardCallback(tmp_path / "tb")
