import math

import numpy as np
import torch

from ocrbench.config import TrainConfig
from ocrbench.lr_find import lr_range_test, suggest_lr
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
