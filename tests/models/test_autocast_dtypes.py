"""Recurrent layers and the attention prior run in a stated dtype (float32, autocast off) on every device.

Autocast would otherwise pick per device: CUDA casts cuDNN RNNs to float16 whatever the autocast dtype and
``lstm_cell`` and ``matmul`` to the autocast dtype; CPU autocast leaves LSTMs alone (a bfloat16 input fails) but
casts ``matmul``. CPU bfloat16 autocast stands in for the GPU here (dtype checks only); and without autocast
the code must compute exactly what the plain torch calls compute (the fp32 numbers must not move).
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ocrbench.models import create_model
from ocrbench.models._blocks import BiLSTM
from ocrbench.models.attention_lm import LocationAttention

HEIGHT = 32


def cpu_bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_bilstm_runs_in_float32_under_autocast():
    torch.manual_seed(0)
    rnn, proj = BiLSTM(8, 6, layers=2), torch.nn.Linear(4, 8)
    x, lengths = torch.randn(3, 5, 4), torch.tensor([5, 2, 4])
    with cpu_bf16():
        features = proj(x)
        assert features.dtype == torch.bfloat16  # what autocast hands the LSTM
        out = rnn(features, lengths)
    assert out.dtype == torch.float32 and out.shape == (3, 5, 12)
    torch.testing.assert_close(out, rnn(features.float(), lengths), rtol=0, atol=0)


def test_bilstm_computes_what_torch_packing_computes():
    """Sorting on the host (no synchronising copies) is the same computation as pack_padded_sequence's own
    sorting: the same outputs and gradients, bit for bit, dropout included."""
    torch.manual_seed(0)
    rnn = BiLSTM(4, 6, layers=2, dropout=0.3).train()
    x, lengths = torch.randn(4, 7, 4, requires_grad=True), torch.tensor([3, 7, 1, 7])

    def reference():
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = rnn.lstm(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    results = []
    for fn in (reference, lambda: rnn(x, lengths)):
        torch.manual_seed(1)
        out = fn()
        grads = torch.autograd.grad((out * torch.arange(out.numel()).view_as(out).sin()).sum(),
                                    [x, *rnn.parameters()])
        results.append((out, grads))
    (ref, ref_grads), (out, grads) = results
    assert torch.equal(out, ref)
    assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads))


def test_attention_lm_recurrences_are_float32_under_autocast(rendered_lines):
    torch.manual_seed(0)
    model = create_model("attention_lm_tiny", input_height=HEIGHT).train()
    batch = model.collate([rendered_lines[i] for i in range(3)])
    with cpu_bf16():
        loss = model.loss(batch)  # a bfloat16 input would fail in the CPU LSTM
        memory = model.encode(batch.images, batch.widths)
        _, state = model.decode_step(torch.full((3,), model.bos), model.init_state(memory), memory)
    assert torch.isfinite(loss)
    assert memory["features"].dtype == torch.float32
    assert state["h"].dtype == state["c"].dtype == torch.float32


def test_attention_prior_is_float32_under_autocast():
    """With the content energies at zero the weights are the prior alone: the same with and without
    autocast (autocast would compute the prior's matmul in bfloat16)."""
    torch.manual_seed(0)
    attention = LocationAttention(8, 8, dim=8, prior_shift=2.0)
    torch.nn.init.zeros_(attention.energy.weight)
    values, query = torch.randn(2, 12, 8), torch.randn(2, 8)
    previous = torch.rand(2, 12).softmax(-1)
    mask = torch.ones(2, 12, dtype=torch.bool)
    _, expected = attention(query, attention.key(values), values, mask, previous)
    with cpu_bf16():
        _, weights = attention(query, attention.key(values), values, mask, previous)
    assert torch.equal(weights, expected)
