"""LineBatch in transit: pinned for asynchronous copies, and its lengths kept on the host when it moves."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data._utils.pin_memory import pin_memory as dataloader_pin_memory

from ocrbench.data.charset import Charset
from ocrbench.data.samples import LineBatch, LineCollator


@pytest.fixture
def batch(rendered_lines) -> LineBatch:
    return LineCollator(Charset(), 32)([rendered_lines[i] for i in range(3)])


def assert_same(a: LineBatch, b: LineBatch) -> None:
    assert type(a) is type(b) is LineBatch and a.texts == b.texts
    for field in ("images", "widths", "targets", "target_lengths"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and torch.equal(x.cpu(), y.cpu()), field


def test_dataloader_pinning_pins_every_tensor_of_a_line_batch(batch, monkeypatch):
    """DataLoader(pin_memory=True) calls ``batch.pin_memory()`` on a custom type (pinning itself needs an
    accelerator: here Tensor.pin_memory is replaced by a spy)."""
    pinned = []

    def spy(t, *args, **kwargs):
        pinned.append(t.data_ptr())
        return t.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", spy)
    out = dataloader_pin_memory(batch)
    assert_same(out, batch)
    assert sorted(pinned) == sorted(t.data_ptr() for t in (batch.images, batch.widths, batch.targets,
                                                            batch.target_lengths))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinning needs CUDA")
def test_pinned_batch_through_a_dataloader(rendered_lines):
    loader = DataLoader(rendered_lines, batch_size=3, collate_fn=LineCollator(Charset(), 32), pin_memory=True)
    out = next(iter(loader))
    assert all(t.is_pinned() for t in (out.images, out.widths, out.targets, out.target_lengths))
    moved = out.to("cuda", non_blocking=True)
    assert_same(moved, out)
    assert moved.host_widths.device.type == "cpu"


def test_moving_keeps_the_lengths_on_the_host(batch):
    moved = batch.to("meta")  # a device without data: any read of the lengths would have to copy back
    assert moved.widths.device.type == "meta"
    widths, target_lengths = moved.lengths_on_host()
    assert widths is batch.widths and target_lengths is batch.target_lengths  # the CPU tensors, not copies
    assert moved.to("meta").host_widths is batch.widths  # kept through further moves
    assert_same(batch.to("cpu"), batch)


def test_lengths_on_host_of_a_batch_that_never_was_there(batch):
    assert batch.lengths_on_host()[0] is batch.widths  # a CPU batch: its own tensors
    on_device = LineBatch(*(t.to("meta") for t in (batch.images, batch.widths, batch.targets,
                                                   batch.target_lengths)), batch.texts)
    assert on_device.lengths_on_host(copy=False) == (None, None)  # no copy asked for, none made


def test_a_reference_from_another_collection_keeps_its_text_but_targets_only_known_characters():
    import numpy as np

    from ocrbench.data.samples import LineSample

    collate = LineCollator(Charset("ab"), height=8)
    batch = collate([LineSample(np.zeros((8, 20), np.uint8), "abé", {})])
    assert batch.texts == ["abé"] and batch.targets.tolist() == [[1, 2]]
