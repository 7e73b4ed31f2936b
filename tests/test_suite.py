from dataclasses import replace

from ocrbench.config import ModelEntry, load_suite
from ocrbench.records import read_records
from ocrbench.suite import run_suite


def tiny_suite(tmp_path, *entries):
    cfg = load_suite(None, {"name": "t", "data.train_size": 16, "data.test_size": 8, "data.height": 32,
                            "train.steps": 2, "train.batch_size": 4, "train.device": "cpu",
                            "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")})
    return replace(cfg, models=tuple(entries))


def test_a_failing_model_is_recorded_and_the_suite_goes_on(tmp_path):
    cfg = tiny_suite(tmp_path, ModelEntry("crnn_tiny", kwargs={"no_such_argument": 1}), ModelEntry("line_cnn_tiny"))
    outcomes = run_suite(cfg, progress=False, log=lambda *_: None)
    assert [o.status for o in outcomes] == ["failed", "ok"]
    records = read_records(tmp_path / "results" / "runs.jsonl")
    assert records[0]["status"] == "failed" and "no_such_argument" in records[0]["error"]
    assert records[1]["status"] == "ok"


def test_rerun_skips_finished_models(tmp_path):
    cfg = tiny_suite(tmp_path, ModelEntry("line_cnn_tiny"))
    assert [o.status for o in run_suite(cfg, progress=False, log=lambda *_: None)] == ["ok"]
    assert [o.status for o in run_suite(cfg, progress=False, log=lambda *_: None)] == ["skipped"]
    changed = replace(cfg, train=replace(cfg.train, steps=3))  # another config: runs again
    assert [o.status for o in run_suite(changed, progress=False, log=lambda *_: None)] == ["ok"]
    assert len(read_records(tmp_path / "results" / "runs.jsonl")) == 2
