"""The deployment rows of one model (export, parity, int8, latency) and the table and plot made from them."""

import json

import pytest
import torch

from ocrbench.deploy import latency as latency_module
from ocrbench.deploy import measure as measure_module
from ocrbench.deploy.latency import compiled_calls, compiled_latency_rows, line_width
from ocrbench.deploy.measure import DeployOptions, measure_checkpoint
from ocrbench.deploy.table import markdown, write_results
from ocrbench.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = DeployOptions(chars=(4, 8), compile=False, warmup=0, iters=2, max_seconds=None, batch_size=4)
ALL_BACKENDS = {"eager", "onnxruntime", "eager-int8", "onnxruntime-int8"}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from tests.conftest import RenderedLines

    torch.manual_seed(0)
    model = create_model("crnn_tiny", input_height=32)
    return measure_checkpoint(model, "crnn.pt", RenderedLines(), "rendered", tmp_path_factory.mktemp("onnx"), FAST)


def test_every_measure_and_backend_has_an_ok_row(rows):
    assert all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]
    export = rows[0]
    assert export["measure"] == "export" and export["max_abs_error"] < 1e-4 and export["cer_equal_4dp"]
    assert {r["backend"] for r in rows if r["measure"] == "int8"} == {"eager-int8", "onnxruntime-int8"}
    timed = {(r["backend"], r["chars"]) for r in rows if r["measure"] == "latency"}
    assert timed == {(b, n) for b in ALL_BACKENDS for n in FAST.chars}


def test_every_row_is_stamped(rows):
    for r in rows:
        assert {"model", "status", "dataset", "threads", "ort_threads", "loadavg_1m", "git", "device_name",
                "onnxruntime", "time"} <= r.keys()


def test_latency_lines_widen_with_their_length(rows):
    widths = [r["width"] for r in rows if r["measure"] == "latency" and r["backend"] == "eager"]
    model = create_model("crnn_tiny", input_height=32)
    assert widths == [line_width(model, n) for n in FAST.chars] and widths[0] < widths[1]
    assert line_width(model, 8) % model.info.output_stride == 0 and line_width(model, 8) >= model.min_input_width(8)


def test_a_model_that_does_not_export_gets_a_row_saying_why(tmp_path, monkeypatch):
    from tests.conftest import RenderedLines

    def fail(model, folder):
        raise RuntimeError("an op ONNX lacks")

    monkeypatch.setattr(measure_module, "export_onnx", fail)
    model = create_model("line_cnn_tiny", input_height=32)
    found = measure_checkpoint(model, "x.pt", RenderedLines(["ab", "cd"]), "rendered", tmp_path, FAST)
    export = found[0]
    assert export["status"] == "error" and "an op ONNX lacks" in export["error"]
    by_backend = {(r["measure"], r.get("backend")): r["status"] for r in found}
    assert by_backend[("latency", "eager")] == "ok" and by_backend[("int8", "eager-int8")] == "ok"
    assert by_backend[("latency", "onnxruntime")] == "error" and by_backend[("int8", "onnxruntime-int8")] == "error"


def test_compiled_calls_are_undone_and_a_compile_failure_is_a_row(monkeypatch):
    model = create_model("attention_lm_tiny", input_height=32)
    with compiled_calls(model):
        assert "decode_step" in model.__dict__ and "encode" in model.__dict__
    assert "decode_step" not in model.__dict__

    def broken(fn, **kwargs):
        raise RuntimeError("inductor failed")

    monkeypatch.setattr(latency_module.torch, "compile", broken)
    found = compiled_latency_rows(model, (4, 8), torch.device("cpu"), warmup=0, iters=1, max_seconds=None)
    assert [r["status"] for r in found] == ["error", "error"] and "inductor failed" in found[0]["error"]


def test_table_and_plot_come_from_the_rows(rows, tmp_path):
    text = markdown(rows)
    assert "| crnn_tiny | ctc |" in text and "| crnn_tiny | onnxruntime-int8 |" in text
    assert "threads" in text and "load average" in text
    paths = write_results(rows, tmp_path)
    assert paths["latency.png"].read_bytes()[:4] == b"\x89PNG"
    assert len(paths["deploy.jsonl"].read_text().splitlines()) == len(rows)
    assert json.loads(paths["deploy.jsonl"].read_text().splitlines()[0])["measure"] == "export"
    assert len(paths["deploy.csv"].read_text().splitlines()) == len(rows) + 1
