"""The zoo index: what it lists, and how zoo:NAME resolves (local folder, file:// URL, sha256 check)."""

import json
from pathlib import Path

import pytest
import torch

from ocrbench.config import load_suite, resolve_config
from ocrbench.deploy import zoo
from ocrbench.errors import UnknownNameError, UserError
from ocrbench.records import read_records

REPO = Path(__file__).resolve().parents[2]


def test_the_index_lists_the_quick_reference_checkpoints():
    entries = zoo.load_index()
    quick = {e.model: e for e in entries.values() if e.suite == "quick" and e.seed == 0}
    assert set(quick) == {m.name for m in load_suite(resolve_config("quick")).models}
    records = {r["config_hash"]: r for r in read_records(REPO / "results" / "quick" / "runs.jsonl")
               if r["dataset"] == r.get("train_dataset")}  # scored on the suite's own test split
    for e in quick.values():
        assert len(e.sha256) == 64 and e.size > 0 and e.file == f"{e.name}.pt" and 0 <= e.score <= 1
        assert e.config_file == f"{e.name}.yaml" and len(e.config_sha256) == 64
        assert e.config_hash in records and e.metric == ("ap" if e.task == "detection" else "cer")
        if e.task == "recognition":
            assert e.data_version == records[e.config_hash]["data_version"]


def test_the_packaged_checkpoints_are_intact_and_give_every_real_family_its_start():
    packaged = {n: e for n, e in zoo.load_index().items() if zoo.is_packaged(e)}
    for e in packaged.values():  # what the package ships is what the index pins
        assert zoo.sha256_of(zoo.PACKAGED / e.file) == e.sha256 and (zoo.PACKAGED / e.file).stat().st_size == e.size
        assert zoo.sha256_of(zoo.PACKAGED / e.config_file) == e.config_sha256 and e.dataset == "synth-lines"
    assert sorted(p.name for p in zoo.PACKAGED.iterdir()) == sorted(
        f for e in packaged.values() for f in (e.file, e.config_file))  # no file the index does not pin
    real = load_suite(resolve_config("real"))
    for entry in real.models:  # the real track starts every family from a checkpoint the package ships
        spec = entry.train.get("init_from") or real.train.init_from
        name = spec.replace("{model}", entry.name).removeprefix(zoo.PREFIX)
        assert name in packaged and packaged[name].model == entry.name


def test_a_packaged_file_needs_no_zoo_dir_and_only_an_explicit_one_overrides_it(local_zoo, monkeypatch, tmp_path):
    folder, index, entry = local_zoo
    monkeypatch.setattr(zoo, "PACKAGED", folder)
    monkeypatch.setenv(zoo.ENV, str(tmp_path / "elsewhere"))  # set for other checkpoints: not consulted
    assert zoo.resolve("zoo:tiny-test-s0", None, index)[0] == folder / entry.file
    with pytest.raises(UserError, match="not found"):  # --zoo-dir is what the user asked for
        zoo.resolve("zoo:tiny-test-s0", str(tmp_path / "elsewhere"), index)


@pytest.fixture
def local_zoo(tmp_path):
    """A folder with one zoo file and an index naming it: (folder, index path, entry)."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    path, config = folder / "tiny-test-s0.pt", folder / "tiny-test-s0.yaml"
    torch.save({"weights": torch.arange(4)}, path)
    config.write_text("name: ci\n")
    entry = zoo.ZooEntry(name="tiny-test-s0", model="crnn_tiny", task="recognition", suite="ci", seed=0,
                         metric="cer", score=1.0, record_score=1.0, dataset="synth-lines", data_version=None,
                         config_hash="abc", git=None, file=path.name, size=path.stat().st_size,
                         sha256=zoo.sha256_of(path), config_file=config.name,
                         config_sha256=zoo.sha256_of(config))
    index = tmp_path / "index.json"
    zoo.write_index({entry.name: entry}, index)
    return folder, index, entry


def test_resolves_from_a_local_folder(local_zoo):
    folder, index, entry = local_zoo
    path, config, found = zoo.resolve("zoo:tiny-test-s0", str(folder), index)
    assert path == folder / entry.file and config == folder / entry.config_file and found == entry


def test_resolves_from_a_url_into_the_cache(local_zoo, monkeypatch, tmp_path):
    folder, index, entry = local_zoo
    monkeypatch.setenv(zoo.ENV, folder.as_uri())  # file://: the download path without a network
    path, _, _ = zoo.resolve("zoo:tiny-test-s0", None, index)
    assert path.parent.name == "zoo" and path != folder / entry.file and zoo.sha256_of(path) == entry.sha256


def test_a_damaged_file_is_refused_naming_it(local_zoo):
    folder, index, _ = local_zoo
    with open(folder / "tiny-test-s0.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(UserError, match=r"tiny-test-s0\.pt: sha256 .* is not the zoo index's"):
        zoo.resolve("zoo:tiny-test-s0", str(folder), index)


def test_unknown_name_and_missing_file_are_one_clear_error(local_zoo, tmp_path):
    folder, index, _ = local_zoo
    with pytest.raises(UnknownNameError, match="Valid zoo checkpoints: tiny-test-s0"):
        zoo.resolve("zoo:tiny-tset-s0", str(folder), index)
    with pytest.raises(UserError, match="not found"):
        zoo.resolve("zoo:tiny-test-s0", str(tmp_path / "empty"), index)


def test_the_index_is_plain_json_sorted_by_name(local_zoo):
    _, index, entry = local_zoo
    assert json.loads(index.read_text())["checkpoints"][0]["sha256"] == entry.sha256
