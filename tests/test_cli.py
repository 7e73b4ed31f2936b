"""End to end through the `ocrbench` command, on a temp results dir and tiny generated data."""

import json

import pytest

from ocrbench.cli import main

TINY_DATA = ["--set", "data.train_size=16", "--set", "data.test_size=8", "--set", "data.height=32"]


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out.strip().splitlines()[-1])


def test_train_eval_report(tmp_path, capsys):
    common = ["--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    code, trained = run_json(capsys, "train", "--model", "crnn_tiny", "--steps", "3", "--batch-size", "4",
                             "--quiet", *common, *TINY_DATA)
    assert code == 0 and trained["status"] == "ok"
    record = trained["records"][0]
    for key in ("cer", "wer", "params", "train_seconds", "steps", "seed", "precision", "device_name", "torch",
                "git", "config_hash"):
        assert key in record, key
    assert record["steps"] == 3 and record["lines"] == 8

    code, evaluated = run_json(capsys, "eval", "--checkpoint", record["checkpoint"], "--test-size", "8")
    assert code == 0 and evaluated["lines"] == 8 and 0.0 <= evaluated["cer"]

    code, report = run_json(capsys, "report", "--results", str(tmp_path / "results"))
    assert code == 0
    md = (tmp_path / "results" / "leaderboard.md").read_text()
    assert "crnn_tiny" in md and "| Model" in md
    assert (tmp_path / "results" / "leaderboard.csv").read_text().startswith("suite,dataset,split,model,decoder")


def test_rerun_resumes_instead_of_retraining(tmp_path, capsys):
    common = ["--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results"), "--quiet", *TINY_DATA]
    run_json(capsys, "train", "--model", "line_cnn_tiny", "--steps", "2", "--batch-size", "4", *common)
    code, again = run_json(capsys, "train", "--model", "line_cnn_tiny", "--steps", "2", "--batch-size", "4", *common)
    assert code == 0 and again["records"][0]["resumed_from_step"] == 2  # finished checkpoint reused


def test_list_json_shows_models_and_datasets(capsys):
    code, listed = run_json(capsys, "list")
    names = [m["name"] for m in listed["models"]]
    assert code == 0 and {"line_cnn", "resnet_ctc", "crnn"} <= set(names)
    assert "synth-lines" in [d["name"] for d in listed["datasets"]]


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "crnnn"], "unknown model 'crnnn'. Did you mean: crnn"),
    (["train", "--model", "crnn", "--dataset", "no-such-data"], "unknown dataset 'no-such-data'"),
    (["train", "--model", "crnn", "--set", "train.lrr=1"], "unknown field train.lrr"),
    (["run", "/nonexistent/suite.yaml"], "config file not found"),
    (["eval", "--checkpoint", "/nonexistent/checkpoint.pt"], "checkpoint not found"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_bad_set_value_is_refused_even_when_an_option_replaces_it(capsys):
    assert main(["train", "--model", "line_cnn_tiny", "--steps", "5", "--set", "train.steps=abc"]) == 2
    assert "train.steps must be int" in capsys.readouterr().err


def test_list_models_describes_each_model_from_its_docstring(capsys):
    from ocrbench.cli import main

    assert main(["list", "models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert all(m["description"] for m in listed.values())
    assert listed["crnn_tiny"]["description"] == "Tiny CRNN for tests."
