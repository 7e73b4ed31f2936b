"""The built-in ``stanford-memorials`` evaluation set: packaged files only, split ``test`` only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ocrbench
from ocrbench.cli import main
from ocrbench.data.charset import IAM_CHARS
from ocrbench.data.memorials import MEMORIALS_DIR
from ocrbench.data.registry import DataConfig, create_dataset, dataset_info, list_datasets
from ocrbench.errors import UnknownNameError

PACKAGE = Path(ocrbench.__file__).parent
FILES = ["CITATION.cff", "SC0033B_s4_b01_f14_i083.jpg", "SC0033B_s4_b01_f14_i083.xml",
         "SC0033B_s4_b01_f14_i084.jpg", "SC0033B_s4_b01_f14_i084.xml"]


def test_registered_as_an_evaluation_only_test_set():
    assert "stanford-memorials" in list_datasets()
    info = dataset_info("stanford-memorials")
    assert info.splits == ("test",) and not info.needs_root
    assert "evaluation only" in info.description and "CC-BY 4.0" in info.license
    assert "10.5281/zenodo.6126625" in info.citation


@pytest.mark.parametrize("height", [32, 64])
def test_every_handwritten_line_of_both_pages_at_the_config_height(height):
    ds = create_dataset("stanford-memorials", "test", DataConfig(height=height))  # default oov: error
    samples = [ds[i] for i in range(len(ds))]
    assert len(samples) == 26 > 20 and ds.stats["filtered_type_Print"] == 2
    assert {s.meta["page"] for s in samples} == {"SC0033B_s4_b01_f14_i083.jpg", "SC0033B_s4_b01_f14_i084.jpg"}
    assert all(s.text and set(s.text) <= set(IAM_CHARS) for s in samples) and ds.charset.stats.total == 0
    assert sum(len(s.text) for s in samples) == 523 and samples[0].text == "President McClish"
    assert all(s.image.dtype == np.uint8 and s.image.shape[0] == height for s in samples)
    assert all(s.image.shape[1] > height for s in samples)


def test_train_split_is_refused_and_names_the_valid_split():
    with pytest.raises(UnknownNameError, match="'train'") as err:
        create_dataset("stanford-memorials", "train", DataConfig(height=32))
    assert err.value.valid == ["test"]


def test_files_are_packaged_and_read_from_the_package(tmp_path):
    assert MEMORIALS_DIR.is_relative_to(PACKAGE / "data" / "assets")
    assert sorted(p.name for p in MEMORIALS_DIR.iterdir()) == FILES
    assert "10.5281/zenodo.6126625" in (MEMORIALS_DIR / "CITATION.cff").read_text()
    ds = create_dataset("stanford-memorials", "test", DataConfig(height=32, root=str(tmp_path)))  # root ignored
    assert all(p.image_path.parent == MEMORIALS_DIR == p.xml_path.parent for p in ds.pages)
    assert not [p for p in PACKAGE.rglob("*.py") if "../shared" in p.read_text()]


def test_cli_data_info(capsys):
    assert main(["data", "info", "stanford-memorials", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"] == ["test"] and out["needs_root"] is False
