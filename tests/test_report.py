import pandas as pd

from ocrbench.records import append_record
from ocrbench.report import leaderboard, write_report


def record(model, cer, seed=0, status="ok", **kw):
    return {"model": model, "dataset": "synth-lines", "split": "test", "decoder": "greedy", "cer": cer,
            "wer": cer * 2, "params": 1_000_000, "seed": seed, "status": status, "steps": 10,
            "train_seconds": 1.0, "train_lines_per_s": 10.0, "decode_lines_per_s": 100.0, "precision": "fp32",
            "device_name": "cpu", **kw}


def test_best_run_per_model_with_spread():
    runs = pd.DataFrame([record("a", 0.30), record("a", 0.20, seed=1), record("b", 0.10),
                         record("c", 0.0, status="failed")])
    table = leaderboard(runs)
    assert list(table["model"]) == ["b", "a"]  # sorted by CER; failed runs are not ranked
    a = table.set_index("model").loc["a"]
    assert a["cer"] == 0.20 and a["n_runs"] == 2 and abs(a["cer_std"] - 0.0707) < 1e-3


def test_report_files_and_failed_section(tmp_path):
    append_record(tmp_path / "runs.jsonl", record("a", 0.25))
    append_record(tmp_path / "runs.jsonl", {**record("b", 0.0, status="failed"), "error": "loss is nan"})
    written = write_report(tmp_path, plot=False)
    md = open(written["markdown"]).read()
    assert "| a " in md and "0.2500" in md and "## Failed runs" in md and "loss is nan" in md
    assert pd.read_csv(written["csv"])["model"].tolist() == ["a"]


def test_empty_results_give_an_empty_leaderboard(tmp_path):
    written = write_report(tmp_path, plot=False)
    assert "leaderboard" in open(written["markdown"]).read()
