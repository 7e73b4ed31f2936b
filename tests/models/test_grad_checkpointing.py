"""Gradient checkpointing, for every registered recognizer (tiny variants): the same loss and gradients with
and without it, and fewer activations kept for backward with it."""

from __future__ import annotations

import pytest
import torch

from ocrbench.models import create_model, list_models
from ocrbench.profile import saved_activation_bytes

TINY = [n for n in list_models(task="recognition") if n.endswith("_tiny")]
HEIGHT = 32


def loss_and_grads(model, batch, seed: int = 0):
    torch.manual_seed(seed)  # the same dropout masks with and without checkpointing
    model.zero_grad(set_to_none=True)
    loss = model.loss(batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def batch_for(model, dataset, n=3):
    return model.collate([dataset[i] for i in range(n)])


@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", TINY)
def test_same_loss_and_gradients(name, train_mode, rendered_lines):
    torch.manual_seed(0)
    model = create_model(name, input_height=HEIGHT).train(train_mode)
    batch = batch_for(model, rendered_lines)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss, grads = loss_and_grads(model, batch)
    model.load_state_dict(state)  # batch-norm statistics as before the first pass
    model.set_grad_checkpointing(True)
    assert model.grad_checkpointing
    loss_ckpt, grads_ckpt = loss_and_grads(model, batch)
    torch.testing.assert_close(loss_ckpt, loss, rtol=1e-5, atol=1e-6)
    assert grads_ckpt.keys() == grads.keys()
    for n in grads:
        torch.testing.assert_close(grads_ckpt[n], grads[n], rtol=1e-4, atol=1e-6, msg=f"{name}: gradient of {n}")


@pytest.mark.parametrize("name", TINY)
def test_batchnorm_statistics_are_updated_once_per_step_with_checkpointing(name, rendered_lines):
    """The recomputation in backward must not update BatchNorm running statistics a second time."""
    torch.manual_seed(0)
    model = create_model(name, input_height=HEIGHT).train()
    batch = batch_for(model, rendered_lines)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss_and_grads(model, batch)
    plain = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}
    model.load_state_dict(state)
    model.set_grad_checkpointing(True)
    loss_and_grads(model, batch)
    assert plain, f"{name} has no BatchNorm"
    for k, v in plain.items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=1e-5, atol=1e-7, msg=f"{name}: {k}")


@pytest.mark.parametrize("name", TINY)
def test_checkpointing_saves_fewer_activations(name, rendered_lines):
    model = create_model(name, input_height=HEIGHT).eval()  # eval: no dropout, the same work both times
    batch = batch_for(model, rendered_lines)

    def saved() -> int:
        return saved_activation_bytes(lambda: model.loss(batch), model.parameters())[0]

    plain = saved()
    model.set_grad_checkpointing(True)
    checkpointed = saved()
    model.set_grad_checkpointing(False)
    assert checkpointed < plain, f"{name}: set_grad_checkpointing(True) saved {checkpointed} bytes vs {plain}"
    assert saved() == plain  # and it can be switched off again
