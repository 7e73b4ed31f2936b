from dataclasses import replace
from pathlib import Path

from ocrbench.bench.suite import run_suite
from ocrbench.config import ModelEntry, load_suite
from ocrbench.records import read_records


def tiny_suite(tmp_path, *entries):
    cfg = load_suite(None, {"name": "t", "data.train_size": 16, "data.test_size": 8, "data.height": 32,
                            "train.steps": 2, "train.batch_size": 4, "train.device": "cpu",
                            "results_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs")})
    return replace(cfg, models=tuple(entries))


def test_a_failing_model_is_recorded_and_the_suite_goes_on(tmp_path):
    cfg = tiny_suite(tmp_path, ModelEntry("crnn_tiny", kwargs={"no_such_argument": 1}), ModelEntry("line_cnn_tiny"))
    outcomes = run_suite(cfg, progress=False, log=lambda *_: None)
    assert [o.status for o in outcomes] == ["failed", "ok"]
    records = read_records(tmp_path / "results" / "runs.jsonl")
    assert records[0]["status"] == "failed" and "no_such_argument" in records[0]["error"]
    assert records[1]["status"] == "ok"


def test_rerun_skips_finished_models(tmp_path):
    cfg = tiny_suite(tmp_path, ModelEntry("line_cnn_tiny"))
    assert [o.status for o in run_suite(cfg, progress=False, log=lambda *_: None)] == ["ok"]
    assert [o.status for o in run_suite(cfg, progress=False, log=lambda *_: None)] == ["skipped"]
    changed = replace(cfg, train=replace(cfg.train, steps=3))  # another config: runs again
    assert [o.status for o in run_suite(changed, progress=False, log=lambda *_: None)] == ["ok"]
    assert len(read_records(tmp_path / "results" / "runs.jsonl")) == 2


def test_seeds_give_one_job_each_and_rows_group_by_config(tmp_path):
    cfg = replace(tiny_suite(tmp_path, ModelEntry("line_cnn_tiny")), seeds=2)
    outcomes = run_suite(cfg, progress=False, log=lambda *_: None)
    assert [(o.seed, o.status) for o in outcomes] == [(0, "ok"), (1, "ok")]
    a, b = read_records(tmp_path / "results" / "runs.jsonl")
    assert (a["seed"], b["seed"]) == (0, 1) and a["config_hash"] != b["config_hash"]
    assert a["config_id"] == b["config_id"]  # the same configuration: the leaderboard averages them
    assert a["val_curve"] and set(a["time_to_cer"]) == {"0.5", "0.2", "0.1", "0.05"}


def test_a_lost_row_is_produced_again_without_retraining(tmp_path):
    """Completion is checked per expected row: a kill between two decoders' rows loses nothing."""
    cfg = tiny_suite(tmp_path, ModelEntry("crnn_tiny", decoders=("greedy", "beam")))
    run_suite(cfg, progress=False, log=lambda *_: None)
    path = tmp_path / "results" / "runs.jsonl"
    greedy = [line for line in path.read_text().splitlines() if '"decoder": "greedy"' in line]
    path.write_text(greedy[0] + "\n")  # as if killed after the greedy row was appended
    outcomes = run_suite(cfg, progress=False, log=lambda *_: None)
    assert [o.status for o in outcomes] == ["ok"]
    rows = read_records(path)
    assert [r["decoder"] for r in rows] == ["greedy", "beam"]
    assert rows[1]["resumed_from_step"] == rows[1]["steps"]  # the finished checkpoint was reused
    assert [o.status for o in run_suite(cfg, progress=False, log=lambda *_: None)] == ["skipped"]


def test_evaluation_sets_add_rows_but_not_training(tmp_path, shared_download):
    shared_download("stanford-memorials")  # a user download now: installed from the shared copy (else skipped)
    cfg = replace(tiny_suite(tmp_path, ModelEntry("line_cnn_tiny")), eval_sets=("stanford-memorials",))
    run_suite(cfg, progress=False, log=lambda *_: None)
    rows = read_records(tmp_path / "results" / "runs.jsonl")
    assert [(r["dataset"], r["train_dataset"]) for r in rows] == [("synth-lines", "synth-lines"),
                                                                  ("stanford-memorials", "synth-lines")]
    assert rows[1]["lines"] >= 26 and rows[0]["config_hash"] == rows[1]["config_hash"]  # the whole collection
    assert rows[0]["examples"] and rows[1]["examples"] == []  # a download's lines stay on the user's disk


def test_committed_results_quote_no_line_of_a_downloaded_collection():
    """Rows are committed as references: only data ocrbench generates may be quoted in them (provenance)."""
    from ocrbench.datasets import dataset_info

    files = sorted((Path(__file__).resolve().parents[2] / "results").glob("**/runs.jsonl"))
    assert files
    quoted = {(f.parent.name, r["dataset"]) for f in files for r in read_records(f)
              if r.get("examples") and not dataset_info(r["dataset"]).generated}
    assert not quoted


def test_an_unwritable_results_folder_is_refused_before_training(tmp_path):
    import os

    import pytest

    from ocrbench.errors import UserError

    if os.geteuid() == 0:
        blocker = tmp_path / "file"  # root may write anywhere: a file where the folder should be
        blocker.write_text("")
        folder = blocker / "results"
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
    cfg = replace(tiny_suite(tmp_path, ModelEntry("line_cnn_tiny")), results_dir=str(folder))
    with pytest.raises(UserError, match="cannot write results"):
        run_suite(cfg, progress=False, log=lambda *_: None)
    assert not (tmp_path / "runs").exists()  # nothing was trained


def test_observers_write_their_files_and_change_no_identity(tmp_path):
    from ocrbench.bench.identity import run_dir, run_hash
    from ocrbench.config import ObserveConfig
    from ocrbench.diagnostics.features import FEATURE_HISTORY, FeatureHistory

    cfg = tiny_suite(tmp_path, ModelEntry("line_cnn_tiny"))
    watched = replace(cfg, observe=ObserveConfig(tensorboard=True, features_layer="stages.0", features_every=1))
    assert run_hash(cfg.models[0], watched) == run_hash(cfg.models[0], cfg)  # observers change no weights
    run_suite(watched, progress=False, log=lambda *_: None)
    out = run_dir(cfg.models[0], watched)
    assert list((out / "tensorboard").iterdir())
    assert FeatureHistory.load(out / FEATURE_HISTORY).steps == [0, 1, 2]




def test_real_track_fields_of_a_record(tmp_path, shared_download):
    shared_download("stanford-memorials")
    cfg = tiny_suite(tmp_path, ModelEntry("attention_lm_tiny"))
    cfg = replace(cfg, eval_sets=("stanford-memorials",), data=replace(cfg.data, train_lines=12),
                  train=replace(cfg.train, batching="width"))
    run_suite(cfg, progress=False, log=lambda *_: None)
    own, other = read_records(tmp_path / "results" / "runs.jsonl")
    assert own["train_lines"] == 12 and own["train_lines_budget"] == 12 and own["init_from"] == ""
    assert 0 <= own["padding_share"] < 1 and own["charset"] and own["references_over_cap"] == 0
    assert own["max_output_length"] >= max(len(e["ref"]) for e in own["examples"])
    assert "charset_missing" not in own and 0 < other["charset_coverage"] <= 1
    assert sum(n for n, *_ in other["doc_errors"].values()) == round(other["cer"] * other["chars"])


def test_init_from_a_checkpoint_is_recorded_and_a_missing_source_is_one_line(tmp_path):
    import pytest

    from ocrbench.errors import UserError

    source = tiny_suite(tmp_path / "a", ModelEntry("line_cnn_tiny"))
    run_suite(source, progress=False, log=lambda *_: None)
    checkpoint = read_records(tmp_path / "a" / "results" / "runs.jsonl")[0]["checkpoint"]
    cfg = tiny_suite(tmp_path / "b", ModelEntry("line_cnn_tiny"))
    tuned = replace(cfg, train=replace(cfg.train, init_from=checkpoint))
    run_suite(tuned, progress=False, log=lambda *_: None)
    row = read_records(tmp_path / "b" / "results" / "runs.jsonl")[0]
    assert row["init_from"] == checkpoint and len(row["init_from_sha256"]) == 64 and row["init_new_classes"] == ""
    missing = replace(cfg, train=replace(cfg.train, init_from="suite:quick"))
    with pytest.raises(UserError, match="no checkpoint of line_cnn_tiny|has no model line_cnn_tiny"):
        run_suite(missing, progress=False, log=lambda *_: None)


def test_init_from_a_zoo_name_per_model_resolves_verifies_and_is_recorded(tmp_path, monkeypatch):
    import shutil

    import pytest

    from ocrbench.deploy import zoo
    from ocrbench.errors import UserError

    source = tiny_suite(tmp_path / "a", ModelEntry("line_cnn_tiny"))
    run_suite(source, progress=False, log=lambda *_: None)
    folder = tmp_path / "zoo"
    folder.mkdir()
    shutil.copy(read_records(tmp_path / "a" / "results" / "runs.jsonl")[0]["checkpoint"], folder / "c.pt")
    (folder / "c.yaml").write_text("name: ci\n")
    entry = zoo.ZooEntry(name="line_cnn_tiny-ci-s0", model="line_cnn_tiny", task="recognition", suite="ci", seed=0,
                         metric="cer", score=1.0, record_score=1.0, dataset="synth-lines", data_version=None,
                         config_hash="abc", git=None, file="c.pt", size=1, sha256=zoo.sha256_of(folder / "c.pt"),
                         config_file="c.yaml", config_sha256=zoo.sha256_of(folder / "c.yaml"))
    zoo.write_index({entry.name: entry}, tmp_path / "index.json")
    monkeypatch.setattr(zoo, "INDEX", tmp_path / "index.json")
    monkeypatch.setattr(zoo, "PACKAGED", folder)  # shipped with the package: no --zoo-dir, no URL
    monkeypatch.delenv(zoo.ENV, raising=False)
    cfg = tiny_suite(tmp_path / "b", ModelEntry("line_cnn_tiny"))
    run_suite(replace(cfg, train=replace(cfg.train, init_from="zoo:{model}-ci-s0")), progress=False,
              log=lambda *_: None)
    row = read_records(tmp_path / "b" / "results" / "runs.jsonl")[0]
    assert row["init_from"] == "zoo:line_cnn_tiny-ci-s0" and row["init_from_sha256"] == entry.sha256
    unlisted = tiny_suite(tmp_path / "d", ModelEntry("line_cnn_tiny"), ModelEntry("crnn_tiny"))
    with pytest.raises(UserError, match=r"zoo:crnn_tiny-ci-s0: the zoo has no such checkpoint"):  # before training
        run_suite(replace(unlisted, train=replace(unlisted.train, init_from="zoo:{model}-ci-s0")), progress=False,
                  log=lambda *_: None)
    assert not (tmp_path / "d" / "results" / "runs.jsonl").exists()
    (folder / "c.pt").write_bytes(b"damaged")
    cfg = tiny_suite(tmp_path / "c", ModelEntry("line_cnn_tiny"))
    with pytest.raises(UserError, match=r"c\.pt: sha256 .* is not the zoo index's"):
        run_suite(replace(cfg, train=replace(cfg.train, init_from="zoo:{model}-ci-s0")), progress=False,
                  log=lambda *_: None)


def test_a_users_page_folder_is_an_evaluation_set_read_as_written(tmp_path, memorial_pages):
    cfg = tiny_suite(tmp_path, ModelEntry("line_cnn_tiny"))
    cfg = replace(cfg, eval_sets=(f"alto:{memorial_pages}",))
    run_suite(cfg, progress=False, log=lambda *_: None)
    own, folder = read_records(tmp_path / "results" / "runs.jsonl")
    assert folder["dataset"] == f"alto:{memorial_pages}" and folder["train_dataset"] == "synth-lines"
    assert folder["lines"] > own["lines"] / 100 and folder["charset_coverage"] <= 1 and "doc_errors" in folder


def test_only_models_keeps_every_entry_of_the_named_models_and_lists_the_rest():
    import pytest

    from ocrbench.bench.suite import only_models
    from ocrbench.config import resolve_config
    from ocrbench.errors import UserError

    cfg = load_suite(resolve_config("synth-ablation"))
    assert only_models(cfg, None) is cfg
    assert only_models(cfg, ["resnet_ctc_small"]).models == cfg.models  # every entry
    real = load_suite(resolve_config("real-efficiency"))
    kept = only_models(real, ["crnn_small", "line_cnn_small"]).models
    assert {e.name for e in kept} == {"crnn_small", "line_cnn_small"} and len(kept) == 18
    with pytest.raises(UserError, match="no model resnet_ctc_smal;.*lists line_cnn_small"):
        only_models(real, ["resnet_ctc_smal"])


def test_a_train_split_lm_trains_on_the_training_text_and_is_scored_on_the_validation_text(tmp_path):
    from ocrbench.bench.suite import lm_config
    from ocrbench.datasets import create_dataset

    cfg = load_suite(None, {"data.train_size": 16, "data.val_size": 8, "data.cache_dir": str(tmp_path),
                            "lm.corpus": "train-split"})
    train_set, val_set = (create_dataset(cfg.data.name, split, cfg.data) for split in ("train", "val"))
    lm = lm_config(cfg, train_set)
    assert open(lm.corpus).read().splitlines() == [train_set[i].text for i in range(len(train_set))]
    assert lm.held_out.endswith("/val.txt")  # recorded as lm_bpc_val
    assert open(lm.held_out).read().splitlines() == [val_set[i].text for i in range(len(val_set))]
    assert lm_config(cfg, train_set) == lm  # the same files: the LM cache keys on the text


def test_a_decoder_the_model_lacks_is_one_line_before_training(tmp_path):
    import pytest

    from ocrbench.bench.suite import plan_suite
    from ocrbench.errors import UserError

    with pytest.raises(UserError, match="crnn_tiny has no decoder 'ctc' .*Its decoders: greedy, beam, beam\\+lm"):
        plan_suite(tiny_suite(tmp_path, ModelEntry("crnn_tiny", decoders=("greedy", "ctc"))))
    hybrid = ModelEntry("attention_lm_tiny", kwargs={"ctc_weight": 0.3}, decoders=("greedy", "ctc", "ctc+lm"))
    assert plan_suite(tiny_suite(tmp_path, hybrid))[0].todo  # a CTC head: both decoders are owed rows
    assert not (tmp_path / "runs").exists()  # nothing trained
