import pandas as pd
import pytest

from ocrbench.errors import UserError
from ocrbench.records import append_record
from ocrbench.report.leaderboard import compare, leaderboard, leading_rows, truncated_runs, write_report
from ocrbench.report.stats import ci_halfwidth, tie_aware_ranks


def record(model, cer, seed=0, status="ok", **kw):
    return {"suite": "s", "model": model, "dataset": "synth-lines", "split": "test", "decoder": "greedy",
            "cer": cer, "wer": cer * 2, "params": 1_000_000, "seed": seed, "status": status, "steps": 10,
            "config_id": f"id-{model}", "config_hash": f"h-{model}-{seed}", "train_seconds": 1.0,
            "train_lines_per_s": 10.0, "decode_lines_per_s": 100.0, "precision": "fp32", "device_name": "cpu",
            "train_dataset": "synth-lines", **kw}


def test_ci_is_student_t_over_seeds():
    assert ci_halfwidth([0.1, 0.2, 0.3]) == pytest.approx(4.303 * 0.1 / 3**0.5, rel=1e-4)
    assert pd.isna(ci_halfwidth([0.1]))


def test_ranks_are_shared_when_intervals_overlap():
    # a [0.10, 0.20] and b [0.15, 0.25] overlap; c [0.40, 0.40] lies above both
    assert tie_aware_ranks([0.15, 0.20, 0.40], [0.05, 0.05, float("nan")]) == [1, 1, 3]


def test_seeds_are_averaged_with_an_interval_and_ranked():
    runs = pd.DataFrame([record("a", 0.30), record("a", 0.20, seed=1), record("a", 0.25, seed=2),
                         record("b", 0.10), record("b", 0.11, seed=1), record("b", 0.10, seed=2),
                         record("c", 0.0, status="failed")])
    table = leaderboard(runs).set_index("model")
    assert list(table.index) == ["b", "a"]  # failed runs are not ranked
    assert table.loc["a", "cer"] == pytest.approx(0.25) and table.loc["a", "n"] == 3
    assert table.loc["a", "cer_ci"] == pytest.approx(ci_halfwidth([0.3, 0.2, 0.25]))
    assert table.loc["b", "rank"] == 1 and table.loc["a", "rank"] == 2


def test_other_devices_configs_and_truncated_runs_are_never_merged():
    runs = pd.DataFrame([record("a", 0.2), record("a", 0.4, seed=1, device_name="other cpu"),
                         record("a", 0.3, seed=2, config_id="id-a-lr2"), record("a", 0.9, seed=3, truncated=True)])
    table = leaderboard(runs)
    assert sorted(table["cer"]) == [0.2, 0.3, 0.4] and set(table["n"]) == {1}


def test_a_truncated_run_finished_later_is_ranked_once_as_finished():
    runs = pd.DataFrame([record("a", 0.9, truncated=True, train_seconds=2400.0), record("a", 0.3, train_seconds=3000.0),
                         record("b", 0.8, truncated=True)])
    assert list(leaderboard(runs)["cer"]) == [0.3]  # b stays out: truncated and never finished
    assert list(truncated_runs(runs)["model"]) == ["b"]


def test_evaluation_sets_become_columns_of_the_trained_configuration():
    runs = pd.DataFrame([record("a", 0.2), record("a", 0.8, dataset="stanford-memorials")])
    table = leaderboard(runs)
    assert len(table) == 1 and table.loc[0, "cer@stanford-memorials"] == 0.8


def test_compare_judges_the_difference_against_its_interval():
    ref = leaderboard(pd.DataFrame([record("a", c, seed=i) for i, c in enumerate((0.20, 0.22, 0.24))]
                                   + [record("b", c, seed=i) for i, c in enumerate((0.10, 0.10, 0.10))]))
    new = leaderboard(pd.DataFrame([record("a", 0.23), record("b", 0.30)]))
    verdict = compare(new, ref).set_index("model")["verdict"]
    assert verdict["a"] == "same" and verdict["b"] == "worse"
    assert compare(new, ref, tolerance=0.5).set_index("model").loc["b", "verdict"] == "same"


def test_report_files_and_failed_section(tmp_path):
    append_record(tmp_path / "runs.jsonl", record("a", 0.25))
    append_record(tmp_path / "runs.jsonl", {**record("b", 0.0, status="failed"), "error": "loss is nan"})
    written = write_report(tmp_path)
    md = open(written["markdown"]).read()
    assert "| a " in md and "0.2500" in md and "## Failed runs" in md and "loss is nan" in md
    assert pd.read_csv(written["csv"])["model"].tolist() == ["a"]
    assert written["plot"].endswith("leaderboard.png")


def test_empty_results_give_an_empty_leaderboard_and_no_stale_plot(tmp_path):
    (tmp_path / "leaderboard.png").write_bytes(b"old")
    (tmp_path / "runs.jsonl").write_text("")  # records all skipped, or none yet: a folder without the file is refused
    written = write_report(tmp_path)
    assert "No finished recognizer runs" in open(written["markdown"]).read()
    assert not (tmp_path / "leaderboard.png").exists()


def test_the_joined_plot_draws_the_first_folder_only():
    # a longer schedule's row (real-long) must not stand beside the headline suite's rows in one figure
    table = pd.DataFrame({"results": ["real", "real", "real-long"], "model": ["a", "b", "a"], "cer": [.3, .2, .1]})
    assert list(leading_rows(table)["cer"]) == [.3, .2]
    assert leading_rows(table.iloc[:0]).empty


def test_a_missing_results_folder_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="results folder not found"):
        write_report(tmp_path / "nope")


def test_a_folder_without_records_is_refused_not_reported_empty(tmp_path):
    with pytest.raises(UserError, match="no runs.jsonl in"):
        write_report(tmp_path)
    assert not (tmp_path / "leaderboard.md").exists()


def test_the_data_wait_share_is_shown_as_a_mean_percentage(tmp_path):
    for seed, share in enumerate((0.02, 0.04)):
        append_record(tmp_path / "runs.jsonl", record("a", 0.2, seed=seed, data_wait_share=share))
    write_report(tmp_path)
    header, rule, row = (tmp_path / "leaderboard.md").read_text().split("## ", 2)[1].split("\n")[4:7]
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")]))
    assert cells["Data wait %"] == "3.0"
