"""The computations models switch to while being exported to ONNX give the same values as the usual ones."""

import pytest
import torch

from ocrbench.models._blocks import BiLSTM, sliding_windows


@pytest.mark.parametrize("layers", [1, 2])
def test_unpacked_bilstm_equals_the_packed_one(layers):
    torch.manual_seed(0)
    lstm = BiLSTM(6, 5, layers).eval()
    x = torch.randn(3, 9, 6)
    lengths = torch.tensor([9, 4, 6])  # padded rows: the backward direction must start at each row's end
    packed, unpacked = lstm(x, lengths), lstm.forward_unpacked(x, lengths)
    assert torch.allclose(packed, unpacked, atol=1e-6)
    assert unpacked[1, 4:].abs().max() == 0  # padding frames are zero, as pad_packed_sequence leaves them


def test_unpacked_bilstm_is_what_onnx_export_traces(monkeypatch):
    lstm = BiLSTM(4, 3, 1).eval()
    called = []
    monkeypatch.setattr(BiLSTM, "forward_unpacked", lambda self, x, lengths: called.append(1) or x)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    lstm(torch.randn(1, 5, 4), torch.tensor([5]))
    assert called


def test_sliding_windows_while_exporting_equal_unfold(monkeypatch):
    x = torch.randn(2, 11)
    expected = x.unfold(-1, 4, 1)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    assert torch.equal(sliding_windows(x, 4), expected)
