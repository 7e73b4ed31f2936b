"""The registry contract every recognizer must pass. New models are picked up automatically."""

from __future__ import annotations

import pytest
import torch

from ocrbench.data.charset import Charset
from ocrbench.data.samples import LineCollator
from ocrbench.decoding import GREEDY, Decoding
from ocrbench.harness.metrics import cer
from ocrbench.lm import CharLM
from ocrbench.models import Recognizer, create_model, list_models

RECOGNIZERS = list_models(task="recognition")
TINY = [n for n in RECOGNIZERS if n.endswith("_tiny")]
HEIGHT = 32
OVERFIT_STEPS = 400  # the gate: a tiny model must memorise 8 short lines within this many steps


def batch_for(model, dataset, n=8):
    collate = model.collate
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

    from ocrbench.data.samples import LineSample

    model = create_model(name, input_height=HEIGHT)
    tiny_image = np.zeros((HEIGHT, 3), dtype=np.uint8)  # narrower than any receptive field
    long_label = "a long label on a very narrow image"
    batch = model.collate([LineSample(tiny_image, long_label)])
    assert torch.isfinite(model.loss(batch))
    model.eval()
    assert len(model.predict(batch.images, batch.widths)) == 1


@pytest.mark.parametrize("name", TINY)
def test_every_decoder_decodes(name, rendered_lines):
    """Each decoder a recognizer lists (greedy, beam, beam+lm with a tiny untrained LM, as the suite's
    ``make_decodings`` builds them) returns a string per line in the model's charset; at LM weight 0,
    ``beam+lm`` is ``beam``. Decoding leaves no state on the model."""
    torch.manual_seed(0)
    model = create_model(name, input_height=HEIGHT).eval()
    batch = batch_for(model, rendered_lines, n=2)
    lm = CharLM(model.charset.chars, hidden=8, embed=4)
    state = dict(vars(model))
    decodings = {"greedy": GREEDY, "beam": Decoding("beam", 3),
                 "beam+lm": Decoding("beam+lm", 3, lm, lm_weight=0.5, lm_bonus=0.5)}
    decoded = {}
    assert "greedy" in model.decoders  # predict's default
    for decoder in model.decoders:
        decoded[decoder] = model.predict(batch.images, batch.widths, decodings[decoder])
        assert len(decoded[decoder]) == 2 and all(isinstance(h, str) for h in decoded[decoder])
        assert all(set(h) <= set(model.charset.chars) for h in decoded[decoder])
    if "beam+lm" in model.decoders:
        at_zero = Decoding("beam+lm", 3, lm, lm_weight=0.0)
        assert model.predict(batch.images, batch.widths, at_zero) == decoded["beam"]
    assert vars(model).keys() == state.keys() and "_lm" not in vars(model)


def test_the_lm_bonus_is_declared_by_the_class():
    """Whether beam+lm adds the CTC bonus follows the class; every registered recognizer's metadata agrees."""
    for name in RECOGNIZERS:
        model = create_model(name, input_height=HEIGHT)
        assert type(model).lm_bonus_applies == (model.info.decoder == "ctc"), name
    assert not any(hasattr(Recognizer, a) for a in ("beam_width", "attach_lm", "lm_weight", "lm_bonus", "fusion_lm"))


@pytest.mark.parametrize("name", RECOGNIZERS)
def test_unknown_decoder_is_not_implemented(name, rendered_lines):
    model = create_model(name, input_height=HEIGHT).eval()
    batch = batch_for(model, rendered_lines, n=1)
    with pytest.raises(NotImplementedError):
        model.predict(batch.images, batch.widths, "no-such-decoder")


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


# ---- the harness/model contract: declared on the base, no probing ----

HARNESS_CALLS = ("collate", "loss", "predict", "set_grad_checkpointing", "num_params", "flops_passes",
                 "profile_predict", "feature_stages", "forward_features", "class_labels", "class_parameters")


def test_every_harness_call_is_declared_on_the_shared_base():
    from ocrbench.models._base import OCRModel
    from ocrbench.models._detection import Detector

    assert issubclass(Recognizer, OCRModel) and issubclass(Detector, OCRModel)
    assert [c for c in HARNESS_CALLS if c not in vars(OCRModel)] == []
    assert (Recognizer.task, Detector.task) == ("recognition", "detection")


@pytest.mark.parametrize("name", TINY)
def test_collate_is_the_line_collator_and_profile_predict_decodes(name, rendered_lines):
    from ocrbench.harness.train import _collate_fn
    from ocrbench.models._seq2seq import Seq2SeqRecognizer

    torch.manual_seed(0)
    model = create_model(name, input_height=HEIGHT).eval()
    samples = [rendered_lines[i] for i in range(3)]
    shared = LineCollator(model.charset, HEIGHT, min_width=model.min_input_width,
                          width_multiple=model.info.output_stride)(samples)
    ours = _collate_fn(model)(samples)
    assert torch.equal(ours.images, shared.images) and torch.equal(ours.widths, shared.widths)
    assert torch.equal(ours.targets, shared.targets) and ours.texts == shared.texts
    with torch.no_grad():
        out = model.profile_predict(ours.images, ours.widths, 5)
    if isinstance(model, Seq2SeqRecognizer):  # exactly 5 characters and the end token, end token or not
        assert out.shape == (3, 6)
    else:
        assert out == model.predict(ours.images, ours.widths)
    passes = model.flops_passes(ours.images[:1], ours.widths[:1], 5)
    assert set(passes) == {"train", "infer"}


@pytest.mark.parametrize("name", TINY)
def test_feature_stages_run_under_forward_features(name, rendered_lines):
    pytest.importorskip("matplotlib")
    from ocrbench.diagnostics.viz import feature_maps

    model = create_model(name, input_height=HEIGHT)
    batch = model.collate([rendered_lines[0]])
    maps = feature_maps(model, batch.images, batch.widths)  # encoder-decoder models run their encoder only
    assert [n for n, _ in maps] and [n for n, _ in maps] == [n for n, _ in model.feature_stages()][:len(maps)]


def test_a_model_without_conv_stages_shows_n_a():
    from torch import nn

    from ocrbench.diagnostics.viz import feature_maps
    from ocrbench.errors import UserError
    from ocrbench.models._base import CTCRecognizer, ModelInfo

    class Columns(CTCRecognizer):  # one linear layer over each pixel column: no feature maps to show
        def __init__(self):
            super().__init__(Charset("ab"), ModelInfo(HEIGHT, 1, 1, "ctc"))
            self.head = nn.Linear(HEIGHT, self.charset.num_classes)

        def forward(self, images, widths):
            return self.head(images[:, 0].transpose(1, 2))

    model = Columns()
    with pytest.raises(NotImplementedError):
        model.feature_stages()
    with pytest.raises(UserError, match="n/a"):
        feature_maps(model, torch.rand(1, 1, HEIGHT, 8), torch.tensor([8]))


def with_every_charset_layer(name: str, chars: str):
    """A tiny model with all its optional charset-sized layers (a seq2seq model's auxiliary CTC head)."""
    from ocrbench.models._seq2seq import Seq2SeqRecognizer

    model = create_model(name, Charset(chars), input_height=HEIGHT)
    if isinstance(model, Seq2SeqRecognizer):
        model = create_model(name, Charset(chars), input_height=HEIGHT, ctc_weight=0.3)
    return model


@pytest.mark.parametrize("name", TINY)
def test_class_parameters_are_exactly_the_charset_sized_ones(name):
    """``class_parameters`` names every parameter whose shape changes with the charset, and only those, with
    the axis that changes; that axis holds the first classes of ``class_labels`` (all of them in the output
    layer), and every character is labelled by itself (transfer learning maps rows by these labels)."""
    small, large = with_every_charset_layer(name, "abc"), with_every_charset_layer(name, "abcdefgh")
    small_state, large_state = small.state_dict(), large.state_dict()
    changed = {k: next(i for i, (a, b) in enumerate(zip(t.shape, large_state[k].shape)) if a != b)
               for k, t in small_state.items() if t.shape != large_state[k].shape}
    assert large.class_parameters() == changed
    labels = large.class_labels()
    sizes = [large_state[k].shape[axis] for k, axis in changed.items()]
    assert all(size <= len(labels) for size in sizes) and max(sizes) == len(labels)
    assert len(labels) - len(small.class_labels()) == 5 and len(set(labels)) == len(labels)
    assert [labels[i] for i in large.charset.encode("abcdefgh")] == list("abcdefgh")
