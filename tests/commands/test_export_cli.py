"""`ocrbench export` end to end on a hand-made checkpoint, and its one-line errors."""

import json
import sys

import pytest
import torch

from ocrbench.cli import main
from ocrbench.harness.checkpoint import model_meta
from ocrbench.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained cnn_transformer_tiny in the checkpoint format of `ocrbench train` (autoregressive: two graphs)."""
    torch.manual_seed(0)
    model = create_model("cnn_transformer_tiny", input_height=32, max_length=12)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    torch.save({"meta": model_meta(model), "model": model.state_dict()}, path)
    return path


def test_export_with_parity_latency_and_int8(checkpoint, tmp_path, capsys):
    code = main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "onnx"), "--results",
                 str(tmp_path / "deploy"), "--latency", "--int8", "--no-compile", "--chars", "4", "--max-seconds",
                 "0.1", "--test-size", "4", "--quiet", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and not out["failed"]
    export = out["rows"][0]
    assert export["status"] == "ok" and export["kind"] == "seq2seq" and export["cer_equal_4dp"]
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [
        "cnn_transformer_tiny.encoder.int8.onnx", "cnn_transformer_tiny.encoder.onnx",
        "cnn_transformer_tiny.step.int8.onnx", "cnn_transformer_tiny.step.onnx"]
    assert {p.name for p in (tmp_path / "deploy").iterdir()} == {"deploy.jsonl", "deploy.csv", "deploy.md",
                                                                 "latency.png"}


def test_a_missing_onnx_extra_is_one_line_naming_it(checkpoint, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    assert main(["export", "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "pip install ocrbench[deploy]" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "/nonexistent/checkpoint.pt"], "checkpoint not found"),
    (["--checkpoint", "zoo:no-such"], "unknown zoo checkpoint 'no-such'"),
    (["--checkpoint", "x.pt", "--chars", "8,a"], "--chars takes comma-separated numbers"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
