"""Sequence-to-sequence recognizers (tiny variants): decoding paths agree with each other and with teacher
forcing, the KV cache is exact, LM fusion at weight 0 changes nothing, mixed precision stays finite."""

from __future__ import annotations

import pytest
import torch

from ocrbench.decoding import Decoding
from ocrbench.lm import CharLM
from ocrbench.models import create_model, list_models
from ocrbench.models._seq2seq import Seq2SeqRecognizer

HEIGHT = 32
SEQ2SEQ = [n for n in list_models("*_tiny", task="recognition")
           if isinstance(create_model(n, input_height=HEIGHT), Seq2SeqRecognizer)]


def model_and_batch(name, rendered_lines, n=3, **kwargs):
    torch.manual_seed(0)
    # max_length 16: the lines have at most 12 characters, and untrained models decode to the limit
    model = create_model(name, input_height=HEIGHT, **{"max_length": 16, **kwargs}).eval()
    return model, model.collate([rendered_lines[i] for i in range(n)])


def test_both_families_are_covered():
    assert {"attention_lm_tiny", "cnn_transformer_tiny"} <= set(SEQ2SEQ)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_step_by_step_decoding_equals_teacher_forcing(name, rendered_lines):
    model, batch = model_and_batch(name, rendered_lines)
    with torch.no_grad():
        memory = model.encode(batch.images, batch.widths)
        inputs = torch.cat([torch.full((3, 1), model.bos), batch.targets], 1)
        full = model.teacher_forcing(memory, inputs)
        state, steps = model.init_state(memory), []
        for t in range(inputs.shape[1]):
            logits, state = model.decode_step(inputs[:, t], state, memory)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-4, atol=1e-4)


def test_kv_cache_gives_the_same_tokens_as_recomputing(rendered_lines):
    model, batch = model_and_batch("cnn_transformer_tiny", rendered_lines)
    cached = {d: model.predict(batch.images, batch.widths, d) for d in ("greedy", "beam")}
    model.kv_cache = False
    assert {d: model.predict(batch.images, batch.widths, d) for d in ("greedy", "beam")} == cached


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_beam_width_one_is_greedy_and_lm_weight_zero_is_beam(name, rendered_lines):
    model, batch = model_and_batch(name, rendered_lines)
    greedy = model.predict(batch.images, batch.widths, "greedy")
    assert model.predict(batch.images, batch.widths, Decoding("beam", 1)) == greedy
    with pytest.raises(RuntimeError, match="needs a language model"):
        model.predict(batch.images, batch.widths, "beam+lm")
    torch.manual_seed(1)
    lm = CharLM(model.charset.chars, hidden=16).eval()
    plain = model.predict(batch.images, batch.widths, Decoding("beam", 4))
    assert model.predict(batch.images, batch.widths, Decoding("beam+lm", 4, lm, lm_weight=0.0)) == plain
    fused = model.predict(batch.images, batch.widths, Decoding("beam+lm", 4, lm, lm_weight=2.0))
    assert len(fused) == 3 and all(set(h) <= set(model.charset.chars) for h in fused)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_decoding_respects_the_length_limit(name, rendered_lines):
    model, batch = model_and_batch(name, rendered_lines, max_length=4)
    for decoder in ("greedy", "beam"):
        assert all(len(h) <= 4 for h in model.predict(batch.images, batch.widths, decoder))


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_label_smoothing_and_auxiliary_ctc_loss(name, rendered_lines):
    model, batch = model_and_batch(name, rendered_lines, label_smoothing=0.1, ctc_weight=0.3)
    model.train()
    assert model.ctc_head is not None
    assert model.min_input_width(10) == 11 * model.info.output_stride  # a CTC frame per character
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and model.ctc_head.weight.grad is not None


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", SEQ2SEQ)
def test_autocast_is_finite(name, dtype, rendered_lines):
    """CPU autocast as a stand-in for the CUDA path (not run here): finite loss and gradients, and decoding
    with the LM fused (the LM itself runs in float32). Two lines and 8 steps: CPU half precision is slow."""
    model, batch = model_and_batch(name, rendered_lines, n=2, max_length=8)
    model.train()
    with torch.autocast("cpu", dtype=dtype):
        loss = model.loss(batch)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    fusion = Decoding("beam+lm", 2, CharLM(model.charset.chars, hidden=16), lm_weight=0.5)
    with torch.autocast("cpu", dtype=dtype):
        for decoding in ("greedy", fusion):
            assert len(model.predict(batch.images, batch.widths, decoding)) == 2


def test_train_command_with_every_decoder(tmp_path, capsys):
    """`ocrbench train` with greedy, beam and beam+lm: the LM is trained once into the (temp) cache, fused,
    and the records carry beam width, LM weight and the LM's held-out perplexity."""
    import json

    from ocrbench.cli import main

    argv = ["train", "--model", "cnn_transformer_tiny", "--steps", "2", "--batch-size", "4", "--quiet",
            "--decoder", "greedy", "--decoder", "beam", "--decoder", "beam+lm",
            "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results"),
            "--set", "data.train_size=8", "--set", "data.test_size=4", "--set", "data.height=32",
            "--set", "lm.steps=2", "--set", "lm.hidden=8", "--set", "lm.embed=8", "--set", "lm.batch_size=4",
            "--set", "lm.beam_width=3", "--set", "lm.eval_lines=20", "--json"]
    assert main(argv) == 0
    records = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["records"]
    assert [r["decoder"] for r in records] == ["greedy", "beam", "beam+lm"]
    assert all(r["status"] == "ok" and r["lines"] == 4 and r["decode_lines_per_s"] > 0 for r in records)
    assert records[1]["beam_width"] == 3 and "lm_weight" not in records[1]
    fused = records[2]
    assert fused["lm_weight"] == 0.1 and fused["beam_width"] == 3 and fused["lm_bonus"] == 0.0  # CTC only
    assert fused["lm_bpc_test"] > 0 and fused["lm_ppl_kjv_nt"] > 1 and fused["lm_checkpoint"].endswith(".pt")
