"""`ocrbench ci`: the model-regression gate fails, naming the model and its delta, when a model is worse than
its reference, and passes when it is not."""

import sys

import pytest

from ocrbench.bench.identity import config_id, run_hash
from ocrbench.cli import main
from ocrbench.config import load_suite
from ocrbench.datasets import create_dataset
from ocrbench.records import append_record, read_records

SUITE = """name: citest
profile: false
models: [line_cnn_tiny]
data: {train_size: 16, val_size: 4, test_size: 8, height: 32}
train: {steps: 2, batch_size: 4, device: cpu, eval_every: 1}
"""


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "citest.yaml"
    path.write_text(SUITE)
    return path


def reference_row(suite_path, cer: float) -> dict:
    cfg = load_suite(suite_path)
    entry = cfg.models[0]
    version = create_dataset(cfg.data.name, "test", cfg.data).version
    return {"data_version": version, "suite": "citest", "model": entry.name, "dataset": "synth-lines", "split": "test", "decoder": "greedy",
            "decoder_hash": "", "status": "ok", "cer": cer, "wer": cer, "seed": 0, "config_id": config_id(entry, cfg),
            "config_hash": run_hash(entry, cfg), "train_dataset": "synth-lines", "device_name": "reference cpu",
            "params": 1, "steps": 2}


def run_ci(tmp_path, suite, reference_cer):
    ref = tmp_path / "ref"
    append_record(ref / "runs.jsonl", reference_row(suite, reference_cer))
    args = ["ci", "--config", str(suite), "--results", str(tmp_path / "new"), "--reference", str(ref), "--quiet",
            "--set", f"runs_dir={tmp_path / 'runs'}"]
    return main(args), (ref / "REPORT.md").read_text()


def test_a_model_worse_than_its_reference_fails_the_gate(tmp_path, suite, capsys):
    code, report = run_ci(tmp_path, suite, reference_cer=0.0)  # a 2-step model cannot match CER 0
    assert code == 1
    assert "FAILED" in report and "line_cnn_tiny (greedy) CER" in report and "Δ +" in report
    assert read_records(tmp_path / "new" / "runs.jsonl")[0]["status"] == "ok"
    page = (tmp_path / "new" / "leaderboard" / "index.html").read_text()  # the same gate as a web page
    assert "ci gate FAILED" in page and "worse (outside by" in page and "line_cnn_tiny" in page


def test_an_html_folder_that_is_a_file_fails_before_training(tmp_path, suite, capsys):
    (tmp_path / "page").write_text("not a folder")
    assert main(["ci", "--config", str(suite), "--results", str(tmp_path / "new"), "--html", str(tmp_path / "page"),
                 "--quiet"]) == 2
    assert "a file is in the way" in capsys.readouterr().err and not (tmp_path / "new").exists()


def test_the_ray_executor_without_ray_is_one_line_and_keeps_the_last_run(tmp_path, suite, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "runs.jsonl").write_text("{}\n")
    assert main(["ci", "--config", str(suite), "--results", str(tmp_path / "new"), "--executor", "ray",
                 "--quiet"]) == 2
    assert capsys.readouterr().err == "ocrbench: error: --executor ray needs Ray: pip install 'ocrbench[distributed]'\n"
    assert (tmp_path / "new" / "runs.jsonl").read_text() == "{}\n"  # refused before the last run was removed


def test_a_model_as_good_as_its_reference_passes(tmp_path, suite, capsys):
    code, report = run_ci(tmp_path, suite, reference_cer=5.0)  # CER can exceed 1 (insertions), never 5 here
    assert code == 0 and "**passed**" in report and "better" in report


def test_safety_limits_are_sized_from_the_reference_training_time(suite):
    from ocrbench.commands.ci import MIN_LIMIT_MINUTES, SLOW_MARGIN, with_safety_limits

    cfg = load_suite(suite)
    slow = with_safety_limits(cfg, [{"model": "line_cnn_tiny", "status": "ok", "train_seconds": 600.0},
                                    {"model": "line_cnn_tiny", "status": "ok", "train_seconds": 300.0}])
    assert slow.models[0].train["max_minutes"] == SLOW_MARGIN * 10  # the slowest seed, times the margin
    fast = with_safety_limits(cfg, [{"model": "line_cnn_tiny", "status": "ok", "train_seconds": 1.0}])
    assert fast.models[0].train["max_minutes"] == MIN_LIMIT_MINUTES
    assert with_safety_limits(cfg, []).models == cfg.models  # no reference: the suite's own limit
    assert run_hash(slow.models[0], slow) == run_hash(cfg.models[0], cfg)  # a safety limit is no identity


def test_a_run_truncated_on_a_slow_machine_is_named_as_such_not_as_a_regression(tmp_path, capsys):
    path = tmp_path / "citest.yaml"  # a limit of a millisecond stops the run after its first step
    path.write_text(SUITE.replace("models: [line_cnn_tiny]",
                                  "models: [{name: line_cnn_tiny, train: {max_minutes: 0.00001}}]"))
    code, report = run_ci(tmp_path, path, reference_cer=5.0)
    assert code == 1
    assert "line_cnn_tiny: slow machine, not a model regression" in report and "after 1 steps" in report
    assert "has no row in this run" not in report and "Δ +" not in report
