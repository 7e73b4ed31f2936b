import json
from pathlib import Path

import pytest

from ocrbench.cli import main
from ocrbench.records import (
    append_record,
    atomic_write,
    atomic_write_text,
    environment,
    read_records,
    stable_digest,
)


def run_record(i=0, status="ok", **kw):
    """The keys a run record always has (``bench.suite.base_record``), and a score."""
    return {"model": "crnn", "status": status, "dataset": "synth-lines", "split": "test", "decoder": "greedy",
            "config_hash": "abc", "i": i, "cer": 0.1 * i, **kw}


PROFILE_ROW = {"kind": "profile", "model": "crnn", "status": "error", "error": "boom"}  # no dataset or split


def test_append_then_read_in_order(tmp_path):
    path = tmp_path / "runs.jsonl"
    for i in range(3):
        append_record(path, run_record(i))
    assert [r["i"] for r in read_records(path)] == [0, 1, 2]
    assert all(line.endswith("}") for line in path.read_text().splitlines())


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, recwarn):
    path = tmp_path / "runs.jsonl"
    append_record(path, run_record())
    with open(path, "a") as f:
        f.write('{"half": ')  # a write cut off by a crash
    assert read_records(path) == [run_record()]
    assert any("malformed" in str(w.message) and f"{path}:2" in str(w.message) for w in recwarn)


@pytest.mark.parametrize("line, why", [
    ("42", "a number, not an object"),
    ("[1, 2]", "an array, not an object"),
    ('"text"', "a string, not an object"),
    ("null", "null, not an object"),
    ('{"status": "ok"}', "no model, dataset, split"),
    ('{"model": "crnn", "status": "ok", "cer": 0.1}', "no dataset, split"),
    ('{"kind": "profile", "model": "crnn"}', "no status"),
])
def test_valid_json_that_is_not_a_record_is_skipped_with_a_warning(tmp_path, line, why):
    path = tmp_path / "runs.jsonl"
    append_record(path, run_record(0))
    with open(path, "a") as f:
        f.write(line + "\n")
    append_record(path, run_record(1))
    with pytest.warns(UserWarning) as caught:
        records = read_records(path)
    assert [r["i"] for r in records] == [0, 1]
    assert [str(w.message) for w in caught] == [f"{path}:2: skipping a line that is not a record ({why})"]


def test_failed_runs_and_profile_rows_are_records(tmp_path, recwarn):
    path = tmp_path / "mixed.jsonl"
    failed = {k: v for k, v in run_record(status="failed", error="loss is nan").items() if k != "cer"}
    for row in (failed, PROFILE_ROW, {**PROFILE_ROW, "status": "n/a", "reason": "no bf16 on a CPU"}):
        append_record(path, row)
    assert len(read_records(path)) == 3 and not recwarn.list


def test_report_survives_lines_that_are_not_records(tmp_path, capsys):
    results = tmp_path / "results"
    append_record(results / "runs.jsonl", run_record(2, params=1000, wer=0.4))
    with open(results / "runs.jsonl", "a") as f:
        f.write('42\n[1, 2]\n{"status": "ok"}\n')
    with open(results / "profiles.jsonl", "w") as f:
        f.write('{"status": "ok"}\n')
    with pytest.warns(UserWarning, match="not a record"):
        assert main(["report", "--results", str(results)]) == 0
    assert "crnn" in (results / "leaderboard.md").read_text()


def test_missing_file_reads_as_empty(tmp_path):
    assert read_records(tmp_path / "none.jsonl") == []


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_text(path, json.dumps({"a": 1}))
    atomic_write_text(path, json.dumps({"b": 2}))
    assert json.loads(path.read_text()) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp files left behind


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_write_leaves_the_old_file_and_no_temp_file(tmp_path, error):
    path = tmp_path / "model.pt"
    atomic_write_text(path, "old")

    def write(tmp):
        tmp.write_text("half a new fi")  # the temp file exists when the write fails
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, write)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_stable_digest_keeps_the_hashes_that_name_results_and_caches():
    """Committed results carry config hashes and caches are named by these digests: the canonical form
    (sorted keys, compact separators, str() for what JSON cannot hold) must never change."""
    obj = {"b": [1, 2, (3, 4)], "a": "x", "c": None, "p": Path("/data")}
    assert stable_digest(obj).hex()[:16] == "06b10c06235d52e5"
    assert stable_digest(obj, "sha1").hex()[:16] == "a45bc2ee22d9faf4"
    assert stable_digest({"a": 1, "b": 2}) == stable_digest({"b": 2, "a": 1})
    with pytest.raises(TypeError):
        stable_digest(obj, default=None)


def test_environment_stamp_has_what_produced_the_number():
    env = environment("cpu")
    for key in ("device", "device_name", "torch", "threads", "git"):
        assert env[key] not in (None, "")


def test_an_append_after_a_torn_last_line_moves_it_aside(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(b'{"model": "a", "status": "ok", "dataset": "d", "split": "test"}\n{"model": "b", "sta')
    with pytest.warns(UserWarning, match="last line was cut off"):
        append_record(path, {"model": "c", "status": "ok", "dataset": "d", "split": "test"})
    assert [r["model"] for r in read_records(path)] == ["a", "c"]
    assert (tmp_path / "runs.jsonl.partial").read_bytes() == b'{"model": "b", "sta\n'


def test_a_failed_append_leaves_the_whole_line_or_nothing(tmp_path, monkeypatch):
    import errno
    import os

    import ocrbench.records as records

    path = tmp_path / "runs.jsonl"
    append_record(path, {"model": "a"})
    before = path.read_bytes()
    real_write = os.write

    def torn(fd, data):
        real_write(fd, data[:5])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records.os, "write", torn)
    with pytest.raises(OSError) as caught:
        append_record(path, {"model": "b"})
    assert caught.value.filename == str(path) and path.read_bytes() == before
