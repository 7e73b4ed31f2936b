"""`ocrbench sweep`: coarse-to-fine Optuna studies whose trials are normal run records; resumable."""

import json

import pytest
import yaml

from ocrbench.bench.sweep import Param, load_sweep, narrowed, run_sweep
from ocrbench.cli import main
from ocrbench.config import ConfigError
from ocrbench.records import read_records

optuna = pytest.importorskip("optuna")


pytestmark = pytest.mark.usefixtures("one_thread")

SPACE = {"train.lr": {"low": 1.0e-3, "high": 1.0e-2}, "train.batch_size": {"choices": [4, 8]},
         "model.hidden": {"low": 8, "high": 32, "type": "int"}}


def sweep_file(tmp_path, passes, **sweep):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "sweep": {"model": "crnn_tiny", "sampler": "random", "passes": passes,
                                  "pruner": {"startup_trials": 1}, "space": SPACE, **sweep},
        "data": {"train_size": 24, "val_size": 8, "test_size": 8, "height": 32, "options": {"max_chars": 8}},
        "train": {"steps": 4, "eval_every": 2, "device": "cpu"},
        "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")}))
    return path


def trial_records(tmp_path):
    return [r for r in read_records(tmp_path / "results" / "runs.jsonl") if "trial" in r]


def test_three_trials_coarse_to_fine_then_resume(tmp_path, capsys):
    code = main(["sweep", str(sweep_file(tmp_path, [2, 1])), "--quiet", "--json"])
    reply = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and [p["new_trials"] for p in reply["passes"]] == [2, 1]
    records = trial_records(tmp_path)
    assert sorted((r["sweep_pass"], r["trial"]) for r in records) == [(1, 0), (1, 1), (2, 0)]
    storage = f"sqlite:///{tmp_path / 'results' / 'sweep.db'}"
    for r in records:  # each trial is a normal run record, stamped with what was sampled
        study = optuna.load_study(study_name=f"tiny/pass{r['sweep_pass']}", storage=storage)
        assert r["trial_values"] == study.trials[r["trial"]].params
        assert r["sweep"] == "tiny" and r["model"] == "crnn_tiny" and r["lr"] == r["trial_values"]["train.lr"]
        assert r["batch_size"] == r["trial_values"]["train.batch_size"]
        if r["status"] == "ok":
            assert {"cer", "val_curve", "train_curve", "config_hash", "checkpoint"} <= set(r)
            assert study.trials[r["trial"]].value == r["val_curve"][-1][2]  # the objective is validation CER
    # pass 2 searched around the best of pass 1
    coarse = optuna.load_study(study_name="tiny/pass1", storage=storage)
    best = coarse.best_params
    fine = optuna.load_study(study_name="tiny/pass2", storage=storage).trials[0]
    lr = fine.distributions["train.lr"]
    assert 1e-3 <= lr.low < best["train.lr"] < lr.high <= 1e-2 and lr.high / lr.low < 10 ** 0.26

    # a rerun continues: nothing left to do, then one more trial when the fine pass grows
    assert run_sweep(load_sweep(sweep_file(tmp_path, [2, 1])), log=lambda _: None)[1].new_trials == 0
    optuna.load_study(study_name="tiny/pass2", storage=storage).ask()  # a trial a killed sweep left running
    passes = run_sweep(load_sweep(sweep_file(tmp_path, [2, 2])), log=lambda _: None)
    assert [p.new_trials for p in passes] == [0, 1]
    fine = optuna.load_study(study_name="tiny/pass2", storage=storage).trials
    assert [t.state.name for t in fine[:2]] == ["COMPLETE", "FAIL"]  # the interrupted one, retried as trial 2:
    assert fine[2].state.name in ("COMPLETE", "PRUNED") and fine[2].user_attrs == {"retry_of": 1}
    assert len(trial_records(tmp_path)) == 4


def test_narrowing_around_the_best():
    lr = Param("train.lr", 1e-4, 1e-2)
    fine = narrowed(lr, 1e-3, 0.5)  # half the log-width (a decade) centred on the best
    assert fine.low == pytest.approx(10 ** -3.5) and fine.high == pytest.approx(10 ** -2.5)
    edge = narrowed(lr, 1e-2, 0.5)  # at the edge: shifted inside, never cut
    assert edge.low == pytest.approx(10 ** -3) and edge.high == pytest.approx(1e-2)
    width = narrowed(Param("model.hidden", 32, 256, integer=True), 64, 0.25)
    assert isinstance(width.low, int) and 32 <= width.low < 64 < width.high <= 256
    batch = narrowed(Param("train.batch_size", choices=(8, 16, 32, 64)), 32, 0.25)
    assert batch.choices == (16, 32, 64)


def test_config_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="valid: steps"):
        load_sweep(sweep_file(tmp_path, [1], space={"train.stepz": {"low": 1, "high": 2}}))
    with pytest.raises(ConfigError, match="0 < low < high"):
        load_sweep(sweep_file(tmp_path, [1], space={"train.lr": {"low": 0, "high": 1}}))
    with pytest.raises(ConfigError, match="sweep.sampler"):
        load_sweep(sweep_file(tmp_path, [1], sampler="grid"))
    with pytest.raises(ConfigError, match="unknown field sweep.trials"):
        load_sweep(sweep_file(tmp_path, [1], trials=3))


def test_the_example_sweep_loads():
    from ocrbench.config import resolve_config

    sweep = load_sweep(resolve_config("sweep_crnn"))
    assert sweep.spec.model == "crnn_small" and sweep.suite.data.options["max_chars"] == 12  # the quick data
    assert [p.name for p in sweep.spec.space] == ["train.lr", "train.batch_size", "model.hidden"]
    assert sweep.suite.eval_sets == () and not sweep.suite.profile and sweep.suite.train.eval_every > 0
