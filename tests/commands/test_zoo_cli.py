"""`ocrbench zoo` and `ocrbench eval --checkpoint zoo:NAME` end to end: train a tiny run, pack it into a local
zoo folder, evaluate it from there (its CER is the one the index records)."""

import json

import pytest

from ocrbench.cli import main
from ocrbench.deploy import zoo

TINY_DATA = ["--set", "data.train_size=16", "--set", "data.test_size=8", "--set", "data.height=32"]


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def packed(tmp_path, capsys, monkeypatch):
    """A crnn_tiny run packed into tmp_path/zoo, with an index of its own: (zoo folder, entry)."""
    monkeypatch.setattr(zoo, "INDEX", tmp_path / "index.json")
    code, trained = run_json(capsys, "train", "--model", "crnn_tiny", "--steps", "2", "--batch-size", "4", "--quiet",
                             "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results"), *TINY_DATA)
    assert code == 0
    checkpoint = trained["records"][0]["checkpoint"]
    code, out = run_json(capsys, "zoo", "pack", "--checkpoint", checkpoint, "--results", str(tmp_path / "results"),
                         "--out", str(tmp_path / "zoo"))
    assert code == 0 and len(out["checkpoints"]) == 1
    return tmp_path / "zoo", out["checkpoints"][0]


def test_eval_of_a_zoo_checkpoint_from_a_local_folder(packed, capsys):
    folder, entry = packed
    assert entry["model"] == "crnn_tiny" and (folder / entry["file"]).is_file()
    code, evaluated = run_json(capsys, "eval", "--checkpoint", f"zoo:{entry['name']}", "--zoo-dir", str(folder),
                               "--quiet")
    assert code == 0 and evaluated["lines"] == 8  # the run's own test split (its config came with the file)
    assert evaluated["cer"] == pytest.approx(entry["score"], abs=1e-6)


def test_zoo_lists_the_index_and_what_the_folder_holds(packed, capsys):
    folder, entry = packed
    code, listed = run_json(capsys, "zoo", "--zoo-dir", str(folder))
    assert code == 0 and [c["name"] for c in listed["checkpoints"]] == [entry["name"]]
    assert listed["checkpoints"][0]["present"] is True


@pytest.mark.parametrize("argv, message", [
    (["eval", "--checkpoint", "zoo:no-such-model"], "unknown zoo checkpoint 'no-such-model'"),
    (["zoo", "pack"], "zoo pack needs --checkpoint"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
