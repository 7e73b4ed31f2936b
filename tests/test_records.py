import json

from ocrbench.records import append_record, atomic_write_text, environment, read_records


def test_append_then_read_in_order(tmp_path):
    path = tmp_path / "runs.jsonl"
    for i in range(3):
        append_record(path, {"i": i, "cer": 0.1 * i})
    assert [r["i"] for r in read_records(path)] == [0, 1, 2]
    assert all(line.endswith("}") for line in path.read_text().splitlines())


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, recwarn):
    path = tmp_path / "runs.jsonl"
    append_record(path, {"ok": 1})
    with open(path, "a") as f:
        f.write('{"half": ')  # a write cut off by a crash
    assert read_records(path) == [{"ok": 1}]
    assert any("malformed" in str(w.message) for w in recwarn)


def test_missing_file_reads_as_empty(tmp_path):
    assert read_records(tmp_path / "none.jsonl") == []


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_text(path, json.dumps({"a": 1}))
    atomic_write_text(path, json.dumps({"b": 2}))
    assert json.loads(path.read_text()) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp files left behind


def test_environment_stamp_has_what_produced_the_number():
    env = environment("cpu")
    for key in ("device", "device_name", "torch", "threads", "git"):
        assert env[key] not in (None, "")
