"""What a GPU must not wait for: a training loss and a decoder step read nothing of the device's data on the
host. Every such read (``.item()``, ``.cpu()``, ``.tolist()``, ``bool()``, ``int()``) makes the host wait until
the device has finished all queued work; once per token or per training step, that idles the GPU.

Checked on the CPU: a tensor subclass stands for the tensors that would live on the device (the batch, and the
model's buffers) and records every read of one; the batch's CPU copies (``LineBatch.host_widths``) are plain
tensors, as they are on a GPU run. Reads inside C++ kernels (``F.ctc_loss`` copying its lengths) are not seen.
"""

from __future__ import annotations

import pytest
import torch

from ocrbench.models import create_model, list_models
from ocrbench.models._seq2seq import GreedyDecodePass, Seq2SeqRecognizer

HEIGHT = 32
TINY = [n for n in list_models(task="recognition") if n.endswith("_tiny")]
SEQ2SEQ = [n for n in TINY if isinstance(create_model(n, input_height=HEIGHT), Seq2SeqRecognizer)]
HOST_READS = {"__bool__", "__int__", "__float__", "__index__", "item", "cpu", "tolist", "numpy"}
# crnn.forward computes its BiLSTM's lengths from the device widths: it needs a forward_batch override
# (CTCRecognizer.forward_batch) passing the batch's CPU widths; crnn.py is outside this change
KNOWN: dict[str, str] = {}  # model -> why its training loss still syncs (strict xfail)


class OnDevice(torch.Tensor):
    """A CPU tensor that stands for a device tensor: records reads of its data by the host."""

    reads: list[str] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            cls.reads.append(name)
        return super().__torch_function__(func, types, args, kwargs or {})


def on_device(t: torch.Tensor) -> torch.Tensor:
    return t.as_subclass(OnDevice)


def device_model(name: str, **kwargs):
    torch.manual_seed(0)
    model = create_model(name, input_height=HEIGHT, **kwargs)
    for module in model.modules():
        for key, buffer in module._buffers.items():
            if buffer is not None:
                module._buffers[key] = on_device(buffer)
    return model


def device_batch(model, rendered_lines, n=3):
    """A batch as after ``.to(device)``: its tensors "on the device", its CPU copies plain."""
    batch = model.collate([rendered_lines[i] for i in range(n)]).to("cpu")
    for field in ("images", "widths", "targets", "target_lengths"):
        setattr(batch, field, on_device(getattr(batch, field)))
    assert batch.host_widths is not None and type(batch.host_widths) is torch.Tensor
    return batch


def _params(names, **kwargs):
    return [pytest.param(n, kwargs, marks=pytest.mark.xfail(strict=True, reason=KNOWN[n])) if n in KNOWN
            else pytest.param(n, kwargs, id=f"{n}{'-ctc' if kwargs else ''}") for n in names]


@pytest.mark.parametrize(("name", "kwargs"), _params(TINY) + _params(SEQ2SEQ, ctc_weight=0.3))
def test_training_loss_reads_nothing_from_the_device(name, kwargs, rendered_lines):
    model = device_model(name, **kwargs).train()
    batch = device_batch(model, rendered_lines)
    OnDevice.reads = []
    model.loss(batch).backward()
    assert OnDevice.reads == []


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_decoder_steps_read_nothing_from_the_device(name, rendered_lines, monkeypatch):
    """Per token: no read of device data and no new tensor copied from the host (``torch.tensor(...,
    device=cuda)`` waits for the device too). The encoder may read once per batch (packing)."""
    model = device_model(name).eval()
    batch = device_batch(model, rendered_lines)
    created = []
    real_tensor = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: created.append(a) or real_tensor(*a, **k))
    with torch.no_grad():
        memory = model.encode(batch.images, batch.widths)
        state = model.init_state(memory)
        tokens = on_device(torch.full((len(batch),), model.bos))
        OnDevice.reads = []
        for _ in range(4):
            logits, state = model.decode_step(tokens, state, memory)
            tokens = logits.argmax(-1)
    assert OnDevice.reads == [] and created == []


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_profiled_inference_reads_only_in_the_encoder(name, rendered_lines):
    """The profiler's timed inference (encoder + a fixed number of greedy steps): at most the encoder's
    one read per batch, whatever the number of steps."""
    model = device_model(name).eval()
    batch = device_batch(model, rendered_lines)
    counts = []
    for length in (2, 8):
        OnDevice.reads = []
        with torch.no_grad():
            GreedyDecodePass(model, length)(batch.images, batch.widths)
        counts.append(len(OnDevice.reads))
    assert counts[0] == counts[1] <= 1


def test_cnn_transformer_prior_flag_is_fixed_at_construction():
    assert create_model("cnn_transformer_tiny", input_height=HEIGHT).has_prior
    assert not create_model("cnn_transformer_tiny", input_height=HEIGHT, diagonal_prior=False).has_prior
