"""The registry contract every recognizer must pass. New models are picked up automatically."""

from __future__ import annotations

import pytest
import torch

from ocrbench.data.charset import Charset
from ocrbench.metrics import cer
from ocrbench.models import Recognizer, create_model, list_models
from ocrbench.runtime import make_collator

RECOGNIZERS = list_models(task="recognition")
TINY = [n for n in RECOGNIZERS if n.endswith("_tiny")]
HEIGHT = 32
OVERFIT_STEPS = 400  # the gate: a tiny model must memorise 8 short lines within this many steps


def batch_for(model, dataset, n=8):
    collate = make_collator(model, model.charset, HEIGHT)
    return collate([dataset[i] for i in range(n)])


def test_every_family_has_a_tiny_variant():
    families = [n for n in RECOGNIZERS if not n.endswith("_tiny")]
    missing = [n for n in families if f"{n.rsplit('_small', 1)[0]}_tiny" not in RECOGNIZERS]
    assert not missing, f"add a *_tiny variant for the contract tests: {missing}"


@pytest.mark.parametrize("name", RECOGNIZERS)
def test_contract_shapes_loss_and_decode(name, rendered_lines):
    model = create_model(name, input_height=HEIGHT)
    assert isinstance(model, Recognizer)
    assert model.info.input_height == HEIGHT and model.name == name
    batch = batch_for(model, rendered_lines, n=3)
    loss = model.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    model.eval()
    hyps = model.predict(batch.images, batch.widths)
    assert len(hyps) == 3 and all(isinstance(h, str) for h in hyps)
    assert all(set(h) <= set(model.charset.chars) for h in hyps)


@pytest.mark.parametrize("name", RECOGNIZERS)
def test_narrow_image_and_long_label_are_padded_not_crashing(name):
    import numpy as np

    from ocrbench.data.base import LineSample

    model = create_model(name, input_height=HEIGHT)
    tiny_image = np.zeros((HEIGHT, 3), dtype=np.uint8)  # narrower than any receptive field
    long_label = "a long label on a very narrow image"
    batch = make_collator(model, model.charset, HEIGHT)([LineSample(tiny_image, long_label)])
    assert torch.isfinite(model.loss(batch))
    model.eval()
    assert len(model.predict(batch.images, batch.widths)) == 1


@pytest.mark.parametrize("name", RECOGNIZERS)
def test_unknown_decoder_is_not_implemented(name, rendered_lines):
    model = create_model(name, input_height=HEIGHT).eval()
    batch = batch_for(model, rendered_lines, n=1)
    with pytest.raises(NotImplementedError):
        model.predict(batch.images, batch.widths, decoder="no-such-decoder")


@pytest.mark.parametrize("name", TINY)
def test_overfits_one_batch(name, rendered_lines):
    torch.manual_seed(0)
    model = create_model(name, Charset(), input_height=HEIGHT)
    batch = batch_for(model, rendered_lines)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(1, OVERFIT_STEPS + 1):
        model.train()
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            model.eval()
            if cer(model.predict(batch.images, batch.widths), batch.texts) == 0.0:
                return
    model.eval()
    hyps = model.predict(batch.images, batch.widths)
    pytest.fail(f"{name} did not overfit 8 lines in {OVERFIT_STEPS} steps: CER {cer(hyps, batch.texts):.3f}, "
                f"loss {loss.item():.3f}, e.g. {hyps[:2]} vs {batch.texts[:2]}")
