"""Transfer learning: a checkpoint's weights into a fresh model of the same name, rows mapped by character."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
import torch

from ocrbench.data.charset import Charset
from ocrbench.errors import UserError
from ocrbench.harness.checkpoint import CHECKPOINT, save_checkpoint
from ocrbench.harness.transfer import load_init_weights
from ocrbench.models import create_model, list_models
from ocrbench.models._seq2seq import Seq2SeqRecognizer

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [n for n in list_models(task="recognition") if n.endswith("_tiny")]
HEIGHT = 32
SOURCE, TARGET = "abc de", "abcé dz"  # shared "abc d" (" " and "d" move), new "éz", dropped "e"


def make(name: str, chars: str, seed: int, height: int = HEIGHT):
    """A tiny model with every charset-sized layer (a seq2seq model's auxiliary CTC head too)."""
    torch.manual_seed(seed)
    model = create_model(name, Charset(chars), input_height=height)
    if isinstance(model, Seq2SeqRecognizer):
        torch.manual_seed(seed)
        model = create_model(name, Charset(chars), input_height=height, ctc_weight=0.3)
    return model


def save(model, path):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(path, model, optimizer, None, SimpleNamespace(step=1), "hash")
    return path


def one_line_error(path, model, match: str) -> str:
    with pytest.raises(UserError, match=match) as e:
        load_init_weights(model, path)
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("name", TINY)
def test_same_charset_loads_every_weight(name, tmp_path, rendered_lines):
    source = make(name, Charset().chars, seed=0).eval()
    path = save(source, tmp_path / CHECKPOINT)
    target = make(name, Charset().chars, seed=1).eval()
    record = load_init_weights(target, tmp_path)  # a run folder names its checkpoint
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), source.state_dict().values()))
    batch = target.collate([rendered_lines[i] for i in range(2)])
    assert target.predict(batch.images, batch.widths) == source.predict(batch.images, batch.widths)
    assert record == {"init_from_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "init_model": name,
                      "init_copied_classes": len(Charset()), "init_new_classes": "", "init_dropped_classes": "",
                      "init_charset_overlap": 1.0}


@pytest.mark.parametrize("name", TINY)
def test_another_charset_maps_rows_by_character(name, tmp_path):
    source = make(name, SOURCE, seed=0)
    target = make(name, TARGET, seed=1)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    record = load_init_weights(target, save(source, tmp_path / "source.pt"))
    assert {k: record[k] for k in record if k != "init_from_sha256"} == {
        "init_model": name, "init_copied_classes": 5, "init_new_classes": "éz", "init_dropped_classes": "e",
        "init_charset_overlap": 5 / 7}
    s, t, classes = source.state_dict(), target.state_dict(), target.class_parameters()
    assert classes and all(torch.equal(t[k], s[k]) for k in t if k not in classes)
    for key, axis in classes.items():
        rows, src, new = t[key].movedim(axis, 0), s[key].movedim(axis, 0), fresh[key].movedim(axis, 0)
        for c in "abc d":  # a character's row wherever each charset puts it
            assert torch.equal(rows[target.charset.encode(c)[0]], src[source.charset.encode(c)[0]])
        for c in "éz":
            assert torch.equal(rows[target.charset.encode(c)[0]], new[target.charset.encode(c)[0]])
        assert torch.equal(rows[0], src[0])  # blank / padding
        specials = len(rows) - len(TARGET) - 1  # start and end after the characters (seq2seq decoders)
        assert torch.equal(rows[len(rows) - specials:], src[len(src) - specials:])


def test_a_detector_loads_its_weights(tmp_path):
    torch.manual_seed(0)
    source = create_model("yolo_lines_tiny")
    torch.manual_seed(1)
    target = create_model("yolo_lines_tiny")
    assert load_init_weights(target, save(source, tmp_path / "det.pt"))["init_model"] == "yolo_lines_tiny"
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), source.state_dict().values()))


@pytest.mark.parametrize("name", TINY)
def test_another_model_or_shape_is_one_line(name, tmp_path):
    path = save(make(name, SOURCE, seed=0), tmp_path / "source.pt")
    other = next(n for n in TINY if n != name)
    message = one_line_error(path, make(other, SOURCE, seed=0), "holds a checkpoint of")
    assert str(path) in message and name in message and other in message
    message = one_line_error(path, make(name, SOURCE, seed=0, height=2 * HEIGHT), "in the checkpoint but")
    assert str(path) in message and message.count("(") >= 2  # the parameter and both shapes
    if isinstance(make(name, SOURCE, seed=0), Seq2SeqRecognizer):  # a layer only the checkpoint has
        one_line_error(path, create_model(name, Charset(SOURCE), input_height=HEIGHT), "unexpected, e.g. ctc_head")


def test_a_missing_garbage_truncated_or_foreign_file_is_one_line(tmp_path):
    model = make("line_cnn_tiny", SOURCE, seed=0)
    one_line_error(tmp_path / "nothing.pt", model, "not found")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    one_line_error(tmp_path / "garbage.pt", model, "cannot read checkpoint")
    whole = save(model, tmp_path / "whole.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    one_line_error(tmp_path / "truncated.pt", model, "cannot read checkpoint")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    one_line_error(tmp_path / "foreign.pt", model, "not an ocrbench checkpoint")
