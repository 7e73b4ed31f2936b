"""Checkpoints: written atomically, restored with their RNG state, refused under another configuration."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ocrbench.errors import UserError
from ocrbench.harness.checkpoint import CHECKPOINT, checkpoint_file, load_model, restore, save_checkpoint
from ocrbench.harness.train import make_optimizer
from ocrbench.models import create_model


def saved_run(tmp_path):
    torch.manual_seed(0)
    model = create_model("line_cnn_tiny", input_height=32)
    optimizer = make_optimizer(model, SimpleNamespace(weight_decay=0.01, lr=1e-3))
    state = SimpleNamespace(step=7, total_steps=10, history=[(5, 1.0, 0.001)])
    torch.manual_seed(123)
    save_checkpoint(tmp_path / CHECKPOINT, model, optimizer, None, state, "hash-a")
    return model, optimizer, torch.rand(3)  # what the global RNG draws next after the save


def test_restore_returns_the_state_and_continues_the_rng(tmp_path):
    model, optimizer, next_draw = saved_run(tmp_path)
    fresh = create_model("line_cnn_tiny", input_height=32)
    torch.manual_seed(999)
    state = restore(tmp_path / CHECKPOINT, fresh, make_optimizer(fresh, SimpleNamespace(weight_decay=0.01, lr=1e-3)),
                    None, "hash-a")
    assert state == {"step": 7, "total_steps": 10, "history": [(5, 1.0, 0.001)]}
    assert torch.equal(torch.rand(3), next_draw)  # the RNG is where the saved run left it
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert load_model(tmp_path).name == "line_cnn_tiny"  # a run folder names its checkpoint


def test_another_configuration_or_a_foreign_file_is_one_line(tmp_path):
    model, optimizer, _ = saved_run(tmp_path)
    with pytest.raises(UserError, match="different configuration"):
        restore(tmp_path / CHECKPOINT, model, optimizer, None, "hash-b")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not an ocrbench checkpoint"):
        load_model(tmp_path / "foreign.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=f"without a {CHECKPOINT}"):
        checkpoint_file(tmp_path / "empty")
