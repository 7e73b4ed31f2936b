"""A suite's evaluation set that is not downloaded (``NotDownloaded``): skipped for the run with one line naming
the command, no row owed for it, and the leaderboard says so where its column would be."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ocrbench.bench.suite import plan_suite, run_suite
from ocrbench.config import ModelEntry, load_suite
from ocrbench.data.registry import register_dataset
from ocrbench.errors import NotDownloaded
from ocrbench.records import read_records
from ocrbench.report.leaderboard import write_report

pytestmark = pytest.mark.usefixtures("one_thread")
MISSING = "throwaway-not-downloaded"


@register_dataset(MISSING, splits=("test",), description="a test stub: never downloaded", license="none")
def _never_downloaded(split, cfg):
    raise NotDownloaded(MISSING, "/nowhere")


def small_suite(tmp_path):
    cfg = load_suite(None, {"name": "nd", "data.train_size": 8, "data.val_size": 4, "data.test_size": 4,
                            "data.height": 32, "train.steps": 2, "train.batch_size": 4, "train.device": "cpu",
                            "train.eval_batch_size": 4, "profile": False, "eval_sets": [MISSING],
                            "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")})
    return replace(cfg, models=(ModelEntry("crnn_tiny"),))


def test_a_missing_evaluation_set_is_skipped_said_once_and_shown_in_the_leaderboard(tmp_path):
    cfg, said = small_suite(tmp_path), []
    outcomes = run_suite(cfg, progress=False, log=said.append)
    assert [o.status for o in outcomes] == ["ok"]
    command = f"ocrbench data download {MISSING}"
    assert said[0] == (f"[nd] evaluation set {MISSING} skipped: not downloaded; run `{command}`, then rerun to add "
                       "its rows")
    assert [r["dataset"] for r in read_records(tmp_path / "results" / "runs.jsonl")] == ["synth-lines"]
    md = open(write_report(cfg.results_path, plot=False)["markdown"]).read()
    assert f"{MISSING}: not downloaded — run `{command}`" in md
    assert f"CER {MISSING}" in md and "| not downloaded " in md  # its column says so, never a silent blank
    again = run_suite(cfg, progress=False, log=said.append)  # nothing is owed for it: the job is not rerun
    assert [o.status for o in again] == ["skipped"]


def test_once_downloaded_its_rows_are_owed_again(tmp_path):
    """plan_suite (without the skip) still owes the evaluation set's rows: the first run after the download
    evaluates them from the finished checkpoints."""
    cfg = small_suite(tmp_path)
    run_suite(cfg, progress=False, log=lambda *_: None)
    owed = plan_suite(cfg)[0].todo
    assert {row[2] for row in owed} == {MISSING}
