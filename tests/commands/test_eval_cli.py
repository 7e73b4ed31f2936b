"""`ocrbench eval` on hand-made checkpoints: user mistakes end in one line and exit 2, before data loads."""

import json
import sys
from pathlib import Path

import pytest
import torch

from ocrbench.cli import main
from ocrbench.data.charset import IAM_CHARS, Charset
from ocrbench.harness.checkpoint import model_meta
from ocrbench.lm import CharLM, save_lm
from ocrbench.models import create_model
from ocrbench.progress import progress_enabled, set_quiet

NO_DATA = ["--dataset", "iam:/nonexistent/iam"]  # loading it would fail: errors must come before the data


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained crnn_tiny in the checkpoint format of `ocrbench train` (what load_model reads)."""
    model = create_model("crnn_tiny", Charset(IAM_CHARS), input_height=32)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    torch.save({"meta": model_meta(model), "model": model.state_dict()}, path)
    return path


def lm_checkpoint(path, chars=IAM_CHARS):
    save_lm(CharLM(chars, hidden=8, embed=4), path, info={})
    return path


def one_line_error(capsys, *argv) -> str:
    code = main(["eval", *argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("content", [{"conv.weight": torch.zeros(2)}, [1, 2], {"meta": "crnn"}])
def test_a_foreign_checkpoint_is_named_as_such(tmp_path, capsys, content):
    path = tmp_path / "foreign.pt"
    torch.save(content, path)
    err = one_line_error(capsys, "--checkpoint", str(path))
    assert f"{path} is not an ocrbench checkpoint (no 'meta'" in err and "`ocrbench train`" in err


def test_a_detector_checkpoint_is_refused(tmp_path, capsys):
    model = create_model("yolo_lines_tiny")
    torch.save({"meta": model_meta(model), "model": model.state_dict()}, tmp_path / "det.pt")
    assert "a detection model" in one_line_error(capsys, "--checkpoint", str(tmp_path / "det.pt"))


def test_an_unknown_decoder_lists_the_models_decoders_before_the_data_loads(checkpoint, capsys):
    err = one_line_error(capsys, "--checkpoint", str(checkpoint), "--decoder", "beam+lmm", *NO_DATA)
    assert "crnn_tiny has no decoder 'beam+lmm'. Did you mean: beam+lm?" in err
    assert "Its decoders: greedy, beam, beam+lm" in err


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--test-size", "0"], "--test-size must be >= 1, got 0"),
    (["--lm", "lm.pt"], "--lm is used by the +lm decoders only"),
    (["--decoder", "beam+lm", "--lm", "/nonexistent/lm.pt"], "language model checkpoint not found"),
])
def test_bad_options_are_one_line(checkpoint, capsys, argv, message):
    assert message in one_line_error(capsys, "--checkpoint", str(checkpoint), *argv, *NO_DATA)


def test_an_lm_of_another_charset_is_refused(checkpoint, tmp_path, capsys):
    lm = lm_checkpoint(tmp_path / "lm.pt", chars="abc")
    err = one_line_error(capsys, "--checkpoint", str(checkpoint), "--decoder", "beam+lm", "--lm", str(lm),
                         *NO_DATA)
    assert f"--lm {lm}: the language model's charset differs" in err


def test_beam_lm_uses_the_given_lm(checkpoint, tmp_path, capsys):
    lm = lm_checkpoint(tmp_path / "lm.pt")
    code = main(["eval", "--checkpoint", str(checkpoint), "--decoder", "beam+lm", "--lm", str(lm),
                 "--test-size", "2", "--device", "cpu", "--quiet", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["decoder"] == "beam+lm" and out["lines"] == 2
    assert out["lm_checkpoint"] == str(lm) and out["beam_width"] >= 1


class Terminal:
    def isatty(self):
        return True

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def test_progress_bars_only_on_a_terminal_and_never_when_quiet(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress_enabled(True) and not progress_enabled(False)
    set_quiet(True)
    try:
        assert not progress_enabled(True)
    finally:
        set_quiet(False)
    monkeypatch.setattr(sys, "stderr", None)
    assert not progress_enabled(True)


def test_no_progress_bar_is_written_to_a_log(checkpoint, capsys):
    """stderr captured here is not a terminal: nothing may draw a bar (carriage returns) into it."""
    assert main(["eval", "--checkpoint", str(checkpoint), "--test-size", "3", "--device", "cpu"]) == 0
    assert "\r" not in capsys.readouterr().err


def test_eval_counts_the_characters_it_replaces(checkpoint, faulty_alto, capsys):
    """eval reads foreign text with oov: replace, and says how many characters that changed (never silently)."""
    code = main(["eval", "--checkpoint", str(checkpoint), "--dataset", f"alto:{faulty_alto}", "--skip-bad",
                 "--quiet", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["oov_replaced"] == {"€": 1, "✓": 1} and out["bad_files"] == 1


def test_eval_of_a_suite_checkpoint_rebuilds_its_data_and_reproduces_its_record(tmp_path, capsys):
    """With no --dataset, eval reads the run's config.yaml beside the checkpoint: same data settings, same
    batch size, so the CER equals the one the suite recorded."""
    from dataclasses import replace as dc_replace

    from ocrbench.bench.suite import run_suite
    from ocrbench.config import ModelEntry, load_suite
    from ocrbench.records import read_records

    cfg = load_suite(None, {"name": "t", "data.train_size": 16, "data.test_size": 12, "data.height": 32,
                            "data.options": {"max_chars": 6}, "train.steps": 30, "train.batch_size": 4,
                            "train.eval_batch_size": 5, "train.device": "cpu", "profile": False,
                            "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")})
    run_suite(dc_replace(cfg, models=(ModelEntry("line_cnn_tiny"),)), progress=False, log=lambda *_: None)
    record = read_records(tmp_path / "results" / "runs.jsonl")[0]
    assert main(["eval", "--checkpoint", record["checkpoint"], "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data_config"].endswith("config.yaml") and out["lines"] == 12
    assert out["cer"] == record["cer"]


def test_beam_lm_eval_of_a_suite_checkpoint_uses_the_runs_lm_and_fusion(tmp_path, capsys):
    """A +lm decoder in eval reads the run's lm section (here the LM of its training transcriptions and a CTC
    fusion of its own), so the CER equals the run's beam+lm record; `ocrbench lm train --config` of that run
    makes the same LM (the same cache file)."""
    from dataclasses import replace as dc_replace

    from ocrbench.bench.suite import run_suite
    from ocrbench.config import ModelEntry, load_suite
    from ocrbench.records import read_records

    cfg = load_suite(None, {"name": "t", "data.train_size": 16, "data.test_size": 12, "data.height": 32,
                            "data.options": {"max_chars": 6}, "train.steps": 30, "train.batch_size": 4,
                            "train.eval_batch_size": 5, "train.device": "cpu", "profile": False,
                            "lm.corpus": "train-split", "lm.steps": 20, "lm.hidden": 16, "lm.embed": 8,
                            "lm.ctc_weight": 0.9, "lm.ctc_bonus": 1.5, "lm.beam_width": 3,
                            "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")})
    entry = ModelEntry("line_cnn_tiny", decoders=("greedy", "beam+lm"))
    run_suite(dc_replace(cfg, models=(entry,)), progress=False, log=lambda *_: None)
    record = next(r for r in read_records(tmp_path / "results" / "runs.jsonl") if r["decoder"] == "beam+lm")
    assert main(["eval", "--checkpoint", record["checkpoint"], "--decoder", "beam+lm", "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cer"] == record["cer"] and out["lm_checkpoint"] == record["lm_checkpoint"]
    assert (out["lm_weight"], out["lm_bonus"], out["beam_width"]) == (0.9, 1.5, 3)
    config = str(Path(record["checkpoint"]).parent / "config.yaml")
    assert main(["lm", "train", "--config", config, "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == record["lm_checkpoint"]
