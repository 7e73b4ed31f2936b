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
from ocrbench.harness.checkpoint import model_meta
from ocrbench.models import create_model

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
    torch.save({"meta": model_meta(model), "model": {f"old.{k}": v for k, v in model.state_dict().items()}},
               tmp / "mismatch.pt")
    (tmp / "run").mkdir()
    shutil.copy(tmp / "ckpt.pt", tmp / "run" / "checkpoint.pt")
    (tmp / "empty.yaml").write_text("")
    (tmp / "garbage.yaml").write_bytes(bytes(random.Random(0).randrange(128, 256) for _ in range(512)))
    (tmp / "empty").mkdir()
    return {"MISMATCH_CKPT": str(tmp / "mismatch.pt"), "RUN_DIR": str(tmp / "run"),
            "EMPTY_YAML": str(tmp / "empty.yaml"),
            "GARBAGE_YAML": str(tmp / "garbage.yaml"), "EMPTY_DIR": str(tmp / "empty"),
            "CKPT": str(tmp / "ckpt.pt"), "DETECTOR": str(tmp / "detector.pt"), "STATE_DICT": str(tmp / "state_dict.pt"), "LIST_PT": str(tmp / "list.pt"),
            "CORRUPT_PT": str(tmp / "corrupt.pt"), "JUNK": str(tmp / "junk"), "BAD_YAML": str(tmp / "bad.yaml"),
            "BAD_FIELD_YAML": str(tmp / "bad_field.yaml"), "TMP": str(tmp)}


# two real ALTO pages from the shared copy of the downloadable collections (tests skip without it)
MEMORIALS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "stanford-memorials"
PAGE_I083 = "SC0033B_s4_b01_f14_i083"
LONG_LINE = ("the same text written again " * 400)[:11000]


@pytest.fixture(scope="module")
def alto_folders(tmp_path_factory) -> dict[str, str]:
    """``OOV_ALTO`` and ``LONG_ALTO`` (see the docs table)."""
    if not MEMORIALS.is_dir():
        pytest.skip(f"shared real data not available ({MEMORIALS})")
    tmp = tmp_path_factory.mktemp("alto")
    oov, long = trainable_alto(tmp / "oov"), trainable_alto(tmp / "long")
    with_long_line(long)
    return {"OOV_ALTO": str(oov), "LONG_ALTO": str(long)}


def trainable_alto(root: Path) -> Path:
    """The two memorial pages with split files (train: one page, val and test: both) and two characters
    outside the IAM charset (€, ✓) on the training page."""
    root.mkdir(parents=True)
    for name in (f"{PAGE_I083}.xml", f"{PAGE_I083}.jpg", "SC0033B_s4_b01_f14_i084.xml", "SC0033B_s4_b01_f14_i084.jpg"):
        shutil.copyfile(MEMORIALS / name, root / name)
    xml = root / f"{PAGE_I083}.xml"
    xml.write_text(xml.read_text().replace('CONTENT="of the Univ. of the"', 'CONTENT="of the Univ. € of the ✓"'))
    (root / "train.txt").write_text(f"{PAGE_I083}\n")
    for split in ("val", "test"):
        (root / f"{split}.txt").write_text("SC0033B_s4_b01_f14_i084\nSC0033B_s4_b01_f14_i083\n")
    return root


def with_long_line(root: Path) -> None:
    """One line of the training page transcribed with 11,000 characters (a page read as one line)."""
    xml = root / f"{PAGE_I083}.xml"
    text = xml.read_text()
    assert 'CONTENT="of the Univ. € of the ✓"' in text
    xml.write_text(text.replace('CONTENT="of the Univ. € of the ✓"', f'CONTENT="{LONG_LINE}"'))


def expand(command: str, values: dict[str, str]) -> list[str]:
    for key in sorted(values, key=len, reverse=True):  # BAD_FIELD_YAML before BAD_YAML
        command = re.sub(rf"\b{key}\b", values[key], command)
    return shlex.split(command)[1:]


def test_the_table_has_the_cases_of_the_issue():
    assert len(table_rows()) >= 30


@pytest.mark.parametrize("command,expected,status", table_rows(), ids=[r[0][9:60] for r in table_rows()])
def test_each_bad_input_gets_one_clear_line(command, expected, status, placeholders, faulty_alto, capsys,
                                            request):
    if "--device cuda" in command and torch.cuda.is_available():
        pytest.skip("the row is about a machine without a GPU")
    if "_ALTO" in command.replace("FAULTY_ALTO", ""):
        placeholders = {**placeholders, **request.getfixturevalue("alto_folders")}
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


# ---- the fault table of docs/bad-inputs.md: a torn line, two runs at once, a full disk, an over-long line ------
SMALL_SUITE = """\
name: small
seeds: 1
profile: false
models: [crnn_tiny]
data: {name: synth-lines, height: 32, train_size: 16, val_size: 4, test_size: 4, options: {max_chars: 6}}
train: {steps: STEPS, batch_size: 4, checkpoint_every: 2, device: cpu, eval_batch_size: 4}
"""
TRAIN_SMALL = ["--model", "crnn_tiny", "--steps", "2", "--batch-size", "4", "--device", "cpu", "--quiet",
               "--set", "data.train_size=8", "--set", "data.val_size=4", "--set", "data.test_size=4",
               "--set", "data.height=32", "--set", "profile=false"]


def small_suite(tmp: Path, steps: int = 4) -> list[str]:
    (tmp / "small.yaml").write_text(SMALL_SUITE.replace("STEPS", str(steps)))
    return ["run", str(tmp / "small.yaml"), "--results", str(tmp / "results"), "--quiet",
            "--set", f"runs_dir={tmp / 'runs'}"]


def whole_records(path: Path) -> list[dict]:
    """Every line of ``path`` a whole JSON record (nothing glued, nothing torn)."""
    data = path.read_bytes() if path.exists() else b""
    assert not data or data.endswith(b"\n"), data[-80:]
    return [json.loads(line) for line in data.decode().splitlines()]


def test_a_rerun_after_a_torn_last_line_moves_it_aside_and_glues_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "runs.jsonl").write_bytes(b'{"model": "crnn_tiny", "sta')  # a write cut off by a kill
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", *TRAIN_SMALL, "--results", str(results), "--out", str(tmp_path / "runs")]) == 0
    assert any("last line was cut off" in str(w.message) and ".partial" in str(w.message) for w in caught)
    assert [r["model"] for r in whole_records(results / "runs.jsonl")] == ["crnn_tiny"]  # the row is there, once
    assert (results / "runs.jsonl.partial").read_bytes() == b'{"model": "crnn_tiny", "sta\n'


def _popen(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([OCRBENCH, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_one_thread_env())


@pytest.mark.skipif(OCRBENCH is None, reason="the ocrbench entry point is not installed (pip install -e .)")
def test_two_runs_on_one_results_folder_one_refused_every_row_once(tmp_path):
    command = small_suite(tmp_path, steps=40)  # the winner holds the folder for seconds
    first, second = _popen(command), _popen(command)  # both start at once: one gets the folder
    outcomes = sorted([(p.wait(timeout=300), p.stderr.read(), p.pid) for p in (first, second)])
    (ok, ok_err, winner), (refused, err, _) = outcomes
    assert (ok, refused) == (0, 2), outcomes
    assert "Traceback" not in ok_err + err and len(err.strip().splitlines()) == 1, err
    assert f"is in use by another ocrbench run (pid {winner})" in err and str(tmp_path / "results") in err
    assert [(r["model"], r["decoder"]) for r in whole_records(tmp_path / "results" / "runs.jsonl")] == [
        ("crnn_tiny", "greedy")]


# In a subprocess, the disk fills up: FAULT=checkpoint makes every checkpoint write fail, FAULT=rows writes 7 bytes
# of a row to runs.jsonl and then fails (a torn write), as ENOSPC does on a full file system.
FULL_DISK = """\
import errno, os, sys
import torch

def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")

if os.environ["FAULT"] == "checkpoint":
    torch.save = no_space
else:
    write = os.write
    def torn_write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("runs.jsonl"):
            write(fd, bytes(data)[:7])
            no_space()
        return write(fd, data)
    os.write = torn_write
from ocrbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the torn write is found through /proc/self/fd")
@pytest.mark.parametrize("fault", ["checkpoint", "rows"])
def test_a_full_disk_is_one_line_and_leaves_whole_lines_only(tmp_path, fault):
    import os
    import sys

    command = small_suite(tmp_path)
    done = subprocess.run([sys.executable, "-c", FULL_DISK, *command], capture_output=True, text=True,
                          env={**_one_thread_env(), "FAULT": fault})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "no space left on the device writing" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert whole_records(tmp_path / "results" / "runs.jsonl") == []  # the torn row was cut back off
    if fault == "rows":
        assert os.path.getsize(tmp_path / "results" / "runs.jsonl") == 0
    assert main(command) == 0  # space again: the rerun finishes, every row once
    assert [(r["model"], r["decoder"]) for r in whole_records(tmp_path / "results" / "runs.jsonl")] == [
        ("crnn_tiny", "greedy")]


RSS_LIMIT_MIB = 2048  # the 11,000-character line took 24 GB before lines and batches were bounded


def run_bounded(args: list[str]) -> tuple[int, str, float]:
    """``ocrbench ARGS`` under a 6 GB address-space limit: (exit status, stderr, peak RSS in MiB)."""
    import os
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    proc = subprocess.Popen([OCRBENCH, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_one_thread_env(), preexec_fn=limit)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss / 1024


@pytest.mark.skipif(OCRBENCH is None, reason="the ocrbench entry point is not installed (pip install -e .)")
def test_an_over_long_line_is_one_line_in_check_eval_and_training_within_a_memory_bound(tmp_path, placeholders,
                                                                                        alto_folders):
    alto = alto_folders["LONG_ALTO"]
    expected = "line of 11,000 characters, over the limit of 500"
    for args, status in ((["data", "check", f"alto:{alto}"], 1),
                         (["eval", "--checkpoint", placeholders["CKPT"], "--dataset", f"alto:{alto}", "--quiet"], 2),
                         (["train", "--model", "crnn_tiny", "--dataset", f"alto:{alto}", "--set", "data.oov=replace",
                           "--steps", "2", "--device", "cpu", "--results", str(tmp_path / "res"), "--out",
                           str(tmp_path / "runs"), "--quiet"], 2)):
        code, err, rss = run_bounded(args)
        assert code == status and "Traceback" not in err, (args, err)
        if status == 2:
            assert expected in err and len(err.strip().splitlines()) == 1, err
        assert rss < RSS_LIMIT_MIB, (args, rss)


def test_ocrbench_cache_at_a_file_is_refused_before_any_data_loads(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("OCRBENCH_CACHE", str(tmp_path / "file"))
    assert main(["train", *TRAIN_SMALL, "--results", str(tmp_path / "res"), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ocrbench: error: cannot write the data cache to {tmp_path / 'file'}")
    assert err.count("\n") == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.pt"))
