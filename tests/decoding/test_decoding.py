"""The ``Decoding`` value: what a row records for each decoder, and the defaults a decoder's name stands for."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ocrbench.config import LMConfig
from ocrbench.decoding import GREEDY, Decoding, as_decoding
from ocrbench.harness.evaluate import decoding_fields, make_decodings
from ocrbench.lm import CharLM
from ocrbench.models import create_model


def test_a_name_stands_for_the_default_settings():
    assert as_decoding("beam") == Decoding("beam", LMConfig().beam_width) and as_decoding(GREEDY) is GREEDY
    with pytest.raises(dataclasses.FrozenInstanceError):
        GREEDY.beam_width = 3
    with pytest.raises(RuntimeError, match="needs a language model"):
        Decoding("beam+lm").fusion_lm(torch.device("cpu"))


def test_the_record_fields_are_those_rows_always_had():
    """The keys and their order of the reference rows: greedy none, beam its width, beam+lm the fusion too."""
    lm = CharLM("ab", hidden=8)
    assert Decoding("greedy", 7).record_fields() == {}
    assert Decoding("beam", 7).record_fields() == {"beam_width": 7}
    fields = decoding_fields(Decoding("beam+lm", 7, lm, lm_weight=0.1, lm_bonus=1.0))
    assert list(fields)[:5] == ["beam_width", "lm_weight", "lm_bonus", "lm_checkpoint", "lm_params"]
    assert (fields["beam_width"], fields["lm_weight"], fields["lm_bonus"]) == (7, 0.1, 1.0)


@pytest.mark.parametrize("name, bonus", [("crnn_tiny", 1.0), ("attention_lm_tiny", 0.0)])
def test_make_decodings_gives_the_bonus_only_where_the_class_declares_it(name, bonus, monkeypatch):
    model = create_model(name, input_height=32)
    lm = CharLM(model.charset.chars, hidden=8)
    monkeypatch.setattr("ocrbench.lm.get_lm", lambda *args, **kwargs: lm)
    cfg = LMConfig(beam_width=3, weight=0.25, ctc_bonus=1.0)
    found = make_decodings(model, ("greedy", "beam", "beam+lm"), cfg)
    assert found["greedy"].name == "greedy" and found["beam"] == Decoding("beam", 3)
    assert found["beam+lm"] == Decoding("beam+lm", 3, lm_weight=0.25, lm_bonus=bonus) and found["beam+lm"].lm is lm
    assert not hasattr(model, "_lm") and "beam_width" not in vars(model)
    ctc_weighted = make_decodings(model, ("beam+lm",), dataclasses.replace(cfg, ctc_weight=0.5))["beam+lm"]
    assert ctc_weighted.lm_weight == (0.5 if bonus else 0.25)  # the CTC weight for CTC models only


@pytest.mark.parametrize("name", ["attention_lm_tiny", "cnn_transformer_tiny"])
def test_a_hybrid_model_reads_its_ctc_head_as_a_ctc_model_does(name, rendered_lines):
    """With an auxiliary CTC head, ``ctc`` is the head's best path and ``ctc+lm`` its prefix beam search with
    the LM and the CTC fusion settings; a model without a head has neither."""
    from ocrbench.decoding.ctc import ctc_greedy_decode
    from ocrbench.decoding.ctc_beam import ctc_prefix_beam_search

    assert "ctc" not in create_model(name, input_height=32).decoders
    torch.manual_seed(0)
    model = create_model(name, input_height=32, ctc_weight=0.3).eval()
    assert model.decoders == ("greedy", "beam", "beam+lm", "ctc", "ctc+lm", "joint", "joint+lm")
    batch = model.collate([rendered_lines[i] for i in range(2)])
    with torch.no_grad():
        memory = model.encode(batch.images, batch.widths)
        logits = model.ctc_head(memory["features"])
    lengths = memory["lengths"].clamp(max=logits.shape[1])
    expected = [model.charset.decode(i) for i in ctc_greedy_decode(logits, lengths)]
    assert model.predict(batch.images, batch.widths, "ctc") == expected
    lm = CharLM(model.charset.chars, hidden=8)
    plain = ctc_prefix_beam_search(logits.float().log_softmax(-1), lengths, 3)
    at_zero = Decoding("ctc+lm", 3, lm, lm_weight=0.0, lm_bonus=0.0)
    assert model.predict(batch.images, batch.widths, at_zero) == [model.charset.decode(i) for i in plain]
    fused = model.predict(batch.images, batch.widths, Decoding("ctc+lm", 3, lm, lm_weight=0.5, lm_bonus=1.0))
    assert len(fused) == 2 and all(set(h) <= set(model.charset.chars) for h in fused)


@pytest.mark.parametrize("name", ["attention_lm_tiny", "cnn_transformer_tiny"])
def test_a_hybrid_model_joint_search_scores_with_its_ctc_head(name, rendered_lines):
    """``joint`` is the attention beam search with the head's prefix score: the head changes what it reads
    (an untrained model's decoder and head disagree), and ``joint+lm`` at LM weight 0 is ``joint`` itself."""
    torch.manual_seed(0)
    model = create_model(name, input_height=32, ctc_weight=0.3).eval()
    batch = model.collate([rendered_lines[i] for i in range(3)])
    beam = model.predict(batch.images, batch.widths, Decoding("beam", 3))
    joint = model.predict(batch.images, batch.widths, Decoding("joint", 3, joint_weight=0.5))
    lm = CharLM(model.charset.chars, hidden=8)
    at_zero = Decoding("joint+lm", 3, lm, lm_weight=0.0, joint_weight=0.5)
    assert model.predict(batch.images, batch.widths, at_zero) == joint
    assert joint != beam and all(set(h) <= set(model.charset.chars) for h in joint)


def test_make_decodings_gives_a_ctc_head_the_ctc_fusion_settings(monkeypatch):
    model = create_model("attention_lm_tiny", input_height=32, ctc_weight=0.3)
    lm = CharLM(model.charset.chars, hidden=8)
    monkeypatch.setattr("ocrbench.lm.get_lm", lambda *args, **kwargs: lm)
    cfg = LMConfig(beam_width=3, weight=0.1, ctc_weight=0.5, ctc_bonus=2.0, joint_weight=0.4)
    found = make_decodings(model, ("beam+lm", "ctc", "ctc+lm", "joint", "joint+lm"), cfg)
    assert found["beam+lm"] == Decoding("beam+lm", 3, lm_weight=0.1, lm_bonus=0.0)  # the attention decoder's
    assert found["ctc+lm"] == Decoding("ctc+lm", 3, lm_weight=0.5, lm_bonus=2.0) and found["ctc+lm"].lm is lm
    assert found["ctc"].record_fields() == {} and decoding_fields(found["ctc+lm"])["lm_weight"] == 0.5
    # joint: the attention decoder's LM weight, no bonus, and the head's share recorded with the row
    assert found["joint"].record_fields() == {"beam_width": 3, "joint_weight": 0.4}
    assert found["joint+lm"].record_fields() == {"beam_width": 3, "lm_weight": 0.1, "lm_bonus": 0.0,
                                                 "joint_weight": 0.4} and found["joint+lm"].lm is lm
