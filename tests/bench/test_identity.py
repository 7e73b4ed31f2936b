"""The run identity: what each hash depends on, and that every committed reference row keeps its key."""

from dataclasses import replace

from ocrbench.bench.identity import (
    config_id,
    data_identity,
    decoder_hash,
    expected_rows,
    recorded_rows,
    row_key,
    run_hash,
    train_identity,
    with_seed,
)
from ocrbench.config import CONFIG_DIR, ModelEntry, config_hash, load_suite
from ocrbench.models import _registry as registry
from ocrbench.records import read_records


def test_the_safety_limit_is_not_part_of_the_configuration():
    cfg = load_suite(None, {"train.max_minutes": 5.0})
    entry = ModelEntry("line_cnn_tiny")
    other = replace(cfg, train=replace(cfg.train, max_minutes=60.0))
    assert run_hash(entry, cfg) == run_hash(entry, other) and config_id(entry, cfg) == config_id(entry, other)
    assert run_hash(entry, cfg) != run_hash(entry, replace(cfg, train=replace(cfg.train, steps=7)))


def test_a_truncated_row_is_owed_again_only_when_the_limit_now_allows_more(tmp_path):
    import json

    row = {"model": "m", "split": "test", "status": "ok", "decoder": "greedy", "dataset": "d"}
    rows = [{**row, "config_hash": "h", "truncated": True, "train_seconds": 2400.0},
            {**row, "config_hash": "g", "train_seconds": 10.0}]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert set(recorded_rows(tmp_path, max_minutes=40.0)) == {"h", "g"}  # the same limit: nothing more to do
    assert set(recorded_rows(tmp_path, max_minutes=60.0)) == {"g"}  # raised: the run goes on from its checkpoint
    assert set(recorded_rows(tmp_path, max_minutes=None)) == {"g"}


def test_a_new_model_version_is_a_new_identity(monkeypatch):
    """A model whose code changed what it learns (version raised) gets new run hashes: its old rows are neither
    resumed nor counted as done. Version 1 leaves the hash as it was before versions existed."""
    cfg, entry = load_suite(None), ModelEntry("line_cnn_tiny")
    before = run_hash(entry, cfg)
    assert before == config_hash(entry.name, entry.kwargs, data_identity(cfg.data), train_identity(cfg.train))
    monkeypatch.setattr(registry._ENTRIES["line_cnn_tiny"], "version", 2)
    assert run_hash(entry, cfg) != before


# every shipped suite with a committed reference folder of its name (results/<suite>/runs.jsonl)
REFERENCE_SUITES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")
                          if (CONFIG_DIR.parents[1] / "results" / p.stem / "runs.jsonl").is_file())


def test_the_committed_references_keep_their_identity():
    """Every committed reference row's config hash is what the shipped suite computes today: a new recipe field
    (or a changed default) that would orphan the references fails here, not in a user's reproduction table."""
    for suite in REFERENCE_SUITES:
        cfg = load_suite(CONFIG_DIR / f"{suite}.yaml")
        rows = read_records(cfg.reference_path / "runs.jsonl")
        assert rows
        for r in rows:  # a suite may list a model several times (real-efficiency): one of its entries
            hashes = {run_hash(e, with_seed(cfg, r["seed"])) for e in cfg.models if e.name == r["model"]}
            assert r["config_hash"] in hashes, (suite, r["model"], r["seed"])


def test_compile_changes_the_identity_only_when_on():
    cfg = replace(load_suite(None), models=(ModelEntry("line_cnn_tiny"),))
    compiled = replace(cfg, train=replace(cfg.train, compile=True))
    assert run_hash(cfg.models[0], compiled) != run_hash(cfg.models[0], cfg)
    workers = replace(cfg, train=replace(cfg.train, num_workers="auto"))
    assert run_hash(cfg.models[0], workers) != run_hash(cfg.models[0], cfg)  # "auto" is what the config says


def test_the_committed_reference_rows_keep_their_keys():
    """Every ok reference row is one the shipped suite still owes (decoder, decoder settings, dataset): a changed
    decoder hash would make a rerun produce every row again instead of none."""
    for suite in ("quick", "ci", "real", "real-scratch"):
        cfg = load_suite(CONFIG_DIR / f"{suite}.yaml")
        rows = [r for r in read_records(cfg.reference_path / "runs.jsonl") if r.get("status") == "ok"]
        assert rows
        for r in rows:
            entry = next(e for e in cfg.models if e.name == r["model"])
            assert row_key(r) in expected_rows(entry, with_seed(cfg, r["seed"])), (suite, r["model"], row_key(r))


def test_the_lm_held_out_text_is_scores_only():
    """Which text the LM is scored on changes no decoding: not part of a decoder's identity; its weight is."""
    lm = load_suite(CONFIG_DIR / "real.yaml").lm
    assert decoder_hash("beam+lm", replace(lm, held_out="val.txt")) == decoder_hash("beam+lm", lm)
    assert decoder_hash("beam+lm", replace(lm, weight=lm.weight + 0.1)) != decoder_hash("beam+lm", lm)
    assert decoder_hash("greedy", lm) == decoder_hash("ctc", lm) == ""  # best path: no settings
    assert decoder_hash("ctc+lm", lm) not in ("", decoder_hash("beam+lm", lm))
