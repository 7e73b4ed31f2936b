"""Faults as a user meets them, through the CLI: every row of docs/bad-inputs.md (one clear line, the stated
exit status, no traceback), kill -9 at several points of a tiny suite (no row lost, none duplicated), and a
read-only results folder. The kill and permission tests drive the installed ``ocrbench`` entry point in a
subprocess; the table runs in-process through the same ``main`` (a subprocess per row would cost a torch
import each)."""

from __future__ import annotations

import json
import random
import re
import shlex
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import torch

from ocrbench.cli import main
from ocrbench.data.charset import IAM_CHARS, Charset
from ocrbench.models import create_model
from ocrbench.train import model_meta

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-inputs.md"
OCRBENCH = shutil.which("ocrbench")


def table_rows() -> list[tuple[str, str, int]]:
    """(command, expected text, exit status) of each row of the docs table."""
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`ocrbench"):
            expected = re.search(r"`([^`]+)`", cells[1]).group(1)
            rows.append((cells[0].strip("`"), expected, int(cells[2])))
    return rows


@pytest.fixture(scope="module")
def placeholders(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("faults")
    model = create_model("crnn_tiny", Charset(IAM_CHARS), input_height=32)
    torch.save({"meta": model_meta(model), "model": model.state_dict()}, tmp / "ckpt.pt")
    torch.save(model.state_dict(), tmp / "state_dict.pt")
    detector = create_model("yolo_lines_tiny")
    torch.save({"meta": model_meta(detector), "model": detector.state_dict()}, tmp / "detector.pt")
    torch.save([1, 2], tmp / "list.pt")
    (tmp / "corrupt.pt").write_bytes((tmp / "ckpt.pt").read_bytes()[:200])
    (tmp / "junk").mkdir()
    (tmp / "junk" / "runs.jsonl").write_text('42\n{"status": "ok"}\n')
    (tmp / "bad.yaml").write_text("name: x\n  models: [\n")
    (tmp / "bad_field.yaml").write_text("name: x\nmodels: [crnn_tiny]\ntrain: {stepz: 3}\n")
    (tmp / "file.txt").write_text("a file, not a folder")
    return {"CKPT": str(tmp / "ckpt.pt"), "DETECTOR": str(tmp / "detector.pt"), "STATE_DICT": str(tmp / "state_dict.pt"), "LIST_PT": str(tmp / "list.pt"),
            "CORRUPT_PT": str(tmp / "corrupt.pt"), "JUNK": str(tmp / "junk"), "BAD_YAML": str(tmp / "bad.yaml"),
            "BAD_FIELD_YAML": str(tmp / "bad_field.yaml"), "TMP": str(tmp)}


def expand(command: str, values: dict[str, str]) -> list[str]:
    for key in sorted(values, key=len, reverse=True):  # BAD_FIELD_YAML before BAD_YAML
        command = re.sub(rf"\b{key}\b", values[key], command)
    return shlex.split(command)[1:]


def test_the_table_has_the_cases_of_the_issue():
    assert len(table_rows()) >= 30


@pytest.mark.parametrize("command,expected,status", table_rows(), ids=[r[0][9:60] for r in table_rows()])
def test_each_bad_input_gets_one_clear_line(command, expected, status, placeholders, faulty_alto, capsys):
    if "--device cuda" in command and torch.cuda.is_available():
        pytest.skip("the row is about a machine without a GPU")
    argv = expand(command.replace("FAULTY_ALTO", str(faulty_alto)), placeholders)
    with warnings.catch_warnings(record=True) as caught:  # a user sees them as one line each (test below)
        warnings.simplefilter("always")
        code = main(argv)
    out, err = capsys.readouterr()
    err += "".join(f"ocrbench: warning: {w.message}\n" for w in caught)
    assert code == status, (command, out, err)
    assert "Traceback" not in err + out
    assert expected in (err if status == 2 else err + out), (command, err, out)
    if status == 2:
        assert len(err.strip().splitlines()) == 1, err  # one line, nothing else


def test_a_warning_reaches_the_user_as_one_line(tmp_path):
    (tmp_path / "runs.jsonl").write_text("42\n")
    done = subprocess.run([OCRBENCH, "report", "--results", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stderr.strip() == (f"ocrbench: warning: {tmp_path}/runs.jsonl:1: skipping a line that is not a "
                                   "record (a number, not an object)")


# ---- kill -9 and rerun, through the installed entry point ---------------------------------------------------
TINY_SUITE = """\
name: faults
seeds: 1
profile: false
models:
  - {name: crnn_tiny, decoders: [greedy, beam]}
  - line_cnn_tiny
data: {name: synth-lines, height: 32, train_size: 64, val_size: 8, test_size: 96, options: {max_chars: 6}}  # beam decoding of 96 lines: a window to kill between rows
train: {steps: 60, batch_size: 8, checkpoint_every: 5, device: cpu, eval_every: 20}
"""
EXPECTED = {("crnn_tiny", "greedy"), ("crnn_tiny", "beam"), ("line_cnn_tiny", "greedy")}


def suite_command(tmp: Path) -> list[str]:
    (tmp / "suite.yaml").write_text(TINY_SUITE)
    return [OCRBENCH, "run", str(tmp / "suite.yaml"), "--results", str(tmp / "results"), "--quiet",
            "--set", f"runs_dir={tmp / 'runs'}"]


def rows(tmp: Path) -> list[dict]:
    """Every line of runs.jsonl must be a JSON record (an object with a model and a status)."""
    path = tmp / "results" / "runs.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) and r.get("model") and r.get("status") == "ok" for r in records), lines
    return records


def run_and_kill(tmp: Path, when) -> bool:
    """Start the suite and SIGKILL it as soon as ``when(tmp)`` holds; False if it finished first."""
    proc = subprocess.Popen(suite_command(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_one_thread_env())
    while proc.poll() is None:
        if when(tmp):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return False


def _one_thread_env() -> dict:
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def training(tmp: Path) -> bool:
    return any((tmp / "runs").rglob("checkpoint.pt")) and not rows_text(tmp)


def between_decoder_rows(tmp: Path) -> bool:
    return rows_text(tmp).count("\n") == 1  # crnn_tiny's greedy row is written, its beam row is not


def evaluating(tmp: Path) -> bool:
    """The second model's training is done (its final checkpoint exists) and its row is not yet written."""
    done = [p for p in (tmp / "runs").rglob("line_cnn_tiny*/checkpoint.pt")]
    return bool(done) and torch.load(done[0], weights_only=False)["state"]["finished"] and rows_text(tmp).count("\n") == 2


def writing_report(tmp: Path) -> bool:
    return rows_text(tmp).count("\n") == 3


def rows_text(tmp: Path) -> str:
    path = tmp / "results" / "runs.jsonl"
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def finish_and_check(tmp: Path) -> None:
    done = subprocess.run(suite_command(tmp), capture_output=True, text=True, env=_one_thread_env())
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    records = rows(tmp)
    keys = [(r["model"], r["decoder"]) for r in records]
    assert sorted(keys) == sorted(EXPECTED), keys  # every row, each once
    assert (tmp / "results" / "leaderboard.md").is_file()


@pytest.mark.skipif(OCRBENCH is None, reason="the ocrbench entry point is not installed (pip install -e .)")
def test_kill_at_named_points_then_rerun_loses_and_duplicates_nothing(tmp_path):
    killed = [run_and_kill(tmp_path, point) for point in (training, between_decoder_rows, evaluating,
                                                          writing_report)]
    assert killed[0] and killed[1], "the kills during training and between rows must land"
    finish_and_check(tmp_path)


@pytest.mark.skipif(OCRBENCH is None, reason="the ocrbench entry point is not installed (pip install -e .)")
def test_kill_at_random_moments_then_rerun_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random(0)
    for _ in range(3):
        deadline = time.monotonic() + rng.uniform(2.0, 12.0)
        run_and_kill(tmp_path, lambda _, deadline=deadline: time.monotonic() > deadline)
    finish_and_check(tmp_path)


@pytest.mark.skipif(OCRBENCH is None or shutil.which("setpriv") is None,
                    reason="needs the installed entry point and setpriv (util-linux) to drop root's override")
def test_a_read_only_results_folder_is_refused_before_training(tmp_path):
    import os

    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    # as root, permissions do not bind: drop the capabilities that override them
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    cmd = (drop if os.geteuid() == 0 else []) + suite_command(tmp_path)
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_one_thread_env())
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot write results to {results}" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # refused before any training
    assert time.monotonic() - t0 < 60
