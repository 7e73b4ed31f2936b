"""`ocrbench ci`: the model-regression gate fails, naming the model and its delta, when a model is worse than
its reference, and passes when it is not."""

import pytest

from ocrbench.cli import main
from ocrbench.config import load_suite
from ocrbench.data.registry import create_dataset
from ocrbench.records import append_record, read_records
from ocrbench.suite import config_id, run_hash

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


def test_a_model_as_good_as_its_reference_passes(tmp_path, suite, capsys):
    code, report = run_ci(tmp_path, suite, reference_cer=5.0)  # CER can exceed 1 (insertions), never 5 here
    assert code == 0 and "**passed**" in report and "better" in report
