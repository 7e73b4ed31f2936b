import math

import numpy as np
import torch

from ocrbench.config import TrainConfig
from ocrbench.diagnostics.lr_find import lr_range_test, suggest_lr
from ocrbench.models import create_model


def test_suggestion_is_the_steepest_descent():
    lrs = list(np.logspace(-6, 0, 61))
    # loss flat, then falling fastest around 1e-3, then exploding
    losses = [5 - 3 / (1 + math.exp(-4 * (math.log10(lr) + 3))) + (50 * lr if lr > 0.1 else 0) for lr in lrs]
    assert 3e-4 < suggest_lr(lrs, losses) < 3e-3


def test_range_test_sweeps_upwards_and_restores_the_weights(rendered_lines):
    torch.manual_seed(0)
    model = create_model("line_cnn_tiny", input_height=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_range_test(model, rendered_lines, TrainConfig(batch_size=4, device="cpu"), steps=20)
    assert len(result.lrs) == len(result.losses) >= 2
    assert all(a < b for a, b in zip(result.lrs, result.lrs[1:]))
    assert result.lrs[0] <= result.suggestion <= result.lrs[-1]
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_range_test_sets_the_matmul_precision_and_scales_fp16_losses(rendered_lines, monkeypatch):
    """As in training: TF32 only for "tf32", and a GradScaler for fp16 through which every step goes (fp16
    itself needs CUDA: autocast is replaced here by a no-op, GradScaler by a recorder)."""
    import contextlib

    import ocrbench.diagnostics.lr_find as lr_find

    precisions, scalers = [], []

    class RecordingScaler:
        def __init__(self, device):
            self.device, self.calls = device, []
            scalers.append(self)

        def scale(self, loss):
            self.calls.append("scale")
            return loss

        def unscale_(self, optimizer):
            self.calls.append("unscale_")

        def step(self, optimizer):
            self.calls.append("step")
            optimizer.step()

        def update(self):
            self.calls.append("update")

    monkeypatch.setattr(lr_find, "set_matmul_precision", lambda device, p: precisions.append((device.type, p)))
    monkeypatch.setattr(lr_find, "autocast", lambda device, p: contextlib.nullcontext())
    monkeypatch.setattr(torch.amp, "GradScaler", RecordingScaler)
    model = create_model("line_cnn_tiny", input_height=32)
    lr_range_test(model, rendered_lines, TrainConfig(batch_size=4, device="cpu", precision="fp16"), steps=3,
                  end_lr=1e-3)
    assert precisions == [("cpu", "fp16")]
    assert len(scalers) == 1 and scalers[0].device == "cuda"
    assert scalers[0].calls == ["scale", "unscale_", "step", "update"] * 3
    scalers.clear()
    lr_range_test(model, rendered_lines, TrainConfig(batch_size=4, device="cpu"), steps=2)
    assert precisions[-1] == ("cpu", "fp32") and not scalers
