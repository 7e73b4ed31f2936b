"""The character LM: text preparation, incremental scoring, training, held-out evaluation, storage, cache, CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ocrbench.cli import main
from ocrbench.config import LMConfig
from ocrbench.data.charset import IAM_CHARS
from ocrbench.errors import UserError
from ocrbench.lm import CharLM, default_lm_path, evaluate_lm, get_lm, load_lm, save_lm, summary, train_lm
from ocrbench.lm.text import (
    CORPORA,
    TRAIN_CORPUS,
    LineSampler,
    corpus_path,
    load_sentences,
    record_key,
    sample_window,
    wrap_lines,
)
from ocrbench.lm.train import HELD_OUT

TINY = LMConfig(hidden=16, embed=8, steps=3, batch_size=4, eval_lines=20)


def test_wrap_lines_keeps_words_and_limits_length():
    lines = wrap_lines(["the quick brown fox jumps", "a " + "x" * 25], max_chars=10)
    assert lines == ["the quick", "brown fox", "jumps", "a", "x" * 10, "x" * 10, "x" * 5]
    assert all(len(line) <= 10 for line in lines)


def test_sampled_windows_are_whole_words_of_bounded_length():
    rng = np.random.default_rng(0)
    words = "one two three four five six seven eight nine ten".split()
    for _ in range(50):
        line = sample_window(rng, words, max_chars=20)
        assert 1 <= len(line) <= 20 and set(line.split()) <= set(words)
    a, b = LineSampler([" ".join(words)], 20, seed=3), LineSampler([" ".join(words)], 20, seed=3)
    assert a.batch(5) == b.batch(5)  # reproducible from the seed


def test_corpora_map_into_the_charset():
    sentences = load_sentences("kjv-nt", IAM_CHARS)
    assert len(sentences) > 1000 and all(set(s) <= set(IAM_CHARS) for s in sentences[:500])


def test_corpus_names_files_and_record_keys():
    assert CORPORA == ("austen-train", "austen-val", "austen-test", "kjv-nt") and TRAIN_CORPUS == "austen-train"
    assert HELD_OUT == ("austen-test", "kjv-nt") and TRAIN_CORPUS not in HELD_OUT
    assert all(corpus_path(name).is_file() for name in CORPORA)
    assert [record_key(c) for c in HELD_OUT] == ["test", "kjv_nt"]  # lm_bpc_test, lm_ppl_kjv_nt
    with pytest.raises(UserError, match="austen-train, austen-val, austen-test, kjv-nt"):
        corpus_path("speeches")


def test_incremental_steps_equal_the_full_forward():
    torch.manual_seed(0)
    lm = CharLM("abc", hidden=12).eval()
    inputs, targets = lm.encode_lines(["abca", "cb"])
    full, _ = lm(inputs)
    logp, state = lm.start(2)
    steps = [logp]
    for t in range(inputs.shape[1] - 1):
        logp, state = lm.step(inputs[:, t + 1], state)
        steps.append(logp)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(full).all() and (full[..., [0, lm.bos]] <= -1e3).all()  # never predicted, but finite
    nll = lm.nll(inputs, targets)
    assert nll[1].item() == pytest.approx(-(full[1, 0, 3] + full[1, 1, 2] + full[1, 2, lm.eos]).item(), rel=1e-5)


def test_training_learns_and_checkpoint_round_trips(tmp_path):
    cfg = LMConfig(hidden=32, embed=16, steps=30, batch_size=16, lr=1e-2)
    lm, info = train_lm(cfg, IAM_CHARS, device="cpu")
    assert info["train_steps"] == 30 and info["train_corpus"] == "austen-train"
    score = evaluate_lm(lm, "austen-test", max_lines=100)
    assert score.lines == 100 and score.bpc < math.log2(len(IAM_CHARS) + 1)  # better than uniform
    assert score.perplexity == pytest.approx(2**score.bpc)
    path = tmp_path / "lm.pt"
    save_lm(lm, path, {**info, "eval": {"austen-test": score.as_dict()}})
    loaded = load_lm(path)
    assert evaluate_lm(loaded, "austen-test", max_lines=100).nll == pytest.approx(score.nll)
    assert summary(loaded)["lm_bpc_test"] == round(score.bpc, 4)


def test_cache_trains_once_per_setting(tmp_path):
    first = get_lm(TINY, IAM_CHARS, cache_dir=str(tmp_path))
    path = default_lm_path(TINY, IAM_CHARS, cache_dir=str(tmp_path))
    assert path.is_file() and first.path == str(path)
    assert set(first.info["eval"]) == {"austen-test", "kjv-nt"}
    stamp = path.stat().st_mtime_ns
    again = get_lm(TINY, IAM_CHARS, cache_dir=str(tmp_path))
    assert path.stat().st_mtime_ns == stamp and again.info == first.info
    assert default_lm_path(replace(TINY, hidden=17), IAM_CHARS, str(tmp_path)) != path
    assert default_lm_path(replace(TINY, weight=0.9), IAM_CHARS, str(tmp_path)) == path  # decoding only
    assert default_lm_path(TINY, IAM_CHARS[:-1], str(tmp_path)) != path


def test_an_lm_is_scored_on_its_held_out_text(tmp_path):
    held_out = tmp_path / "val.txt"
    held_out.write_text("a held out line\nand another one\n")
    lm = get_lm(replace(TINY, held_out=str(held_out)), IAM_CHARS, cache_dir=str(tmp_path))
    assert set(lm.info["eval"]) == {str(held_out)} and summary(lm)["lm_bpc_val"] > 0
    assert default_lm_path(replace(TINY, held_out=str(held_out)), IAM_CHARS, str(tmp_path)) == \
        default_lm_path(TINY, IAM_CHARS, str(tmp_path))  # scores only: the same weights


def test_missing_or_foreign_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="ocrbench lm train"):
        load_lm(tmp_path / "none.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not an ocrbench character LM"):
        load_lm(tmp_path / "other.pt")


def test_cli_train_then_eval(tmp_path, capsys):
    out = tmp_path / "lm.pt"
    tiny = ["--set", "lm.hidden=16", "--set", "lm.embed=8", "--set", "lm.batch_size=4"]
    assert main(["lm", "train", "--steps", "3", "--out", str(out), "--device", "cpu", "--eval-lines", "20", *tiny,
                 "--json"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["train_steps"] == 3 and trained["checkpoint"] == str(out)
    assert {"austen-test", "kjv-nt"} == set(trained["eval"])
    assert main(["lm", "eval", "--checkpoint", str(out), "--text", "kjv-nt", "--max-lines", "50", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["scores"][0]["corpus"] == "kjv-nt" and scored["scores"][0]["lines"] == 50
    assert scored["scores"][0]["bpc"] > 0
