"""The ``stanford-memorials`` evaluation set: read from the downloaded folder, split ``test`` only, and a
:class:`NotDownloaded` naming the command when the folder is absent. The downloaded copy comes from the shared
mirror (half-size images, original XML): those tests skip without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ocrbench
from ocrbench.cli import main
from ocrbench.config import DataConfig
from ocrbench.data.charset import IAM_CHARS
from ocrbench.data.download import REDUCED, get_recipe
from ocrbench.datasets import create_dataset, dataset_info, list_datasets
from ocrbench.errors import NotDownloaded, UnknownNameError

PACKAGE = Path(ocrbench.__file__).parent


def test_registered_as_an_evaluation_only_test_set():
    assert "stanford-memorials" in list_datasets()
    info = dataset_info("stanford-memorials")
    assert info.splits == ("test",) and not info.needs_root
    assert "evaluation only" in info.description and "CC-BY 4.0" in info.license
    assert "10.5281/zenodo.6126625" in info.citation


def test_absent_download_names_the_folder_and_the_command(tmp_path):
    with pytest.raises(NotDownloaded) as err:
        create_dataset("stanford-memorials", "test", DataConfig(height=32, cache_dir=str(tmp_path)))
    assert err.value.dataset == "stanford-memorials" and err.value.command in str(err.value)
    assert str(tmp_path / "datasets" / "stanford-memorials") in str(err.value)


def test_every_handwritten_line_of_the_41_pages(shared_download):
    folder = shared_download("stanford-memorials")
    ds = create_dataset("stanford-memorials", "test", DataConfig(height=32))  # default oov: error
    samples = [ds[i] for i in range(len(ds))]
    assert len(samples) == 355 and ds.stats["filtered_type_Typewritten"] == 285
    assert len({s.meta["page"] for s in samples}) > 26 and all(s.meta["line_type"] == "Handwritten" for s in samples)
    assert len(list(folder.glob("*.xml"))) == 41
    assert ds.charset.stats.replaced == {"ᗅ": 1}  # "Palo ᗅlto": replaced and counted, whatever data.oov says
    assert all(s.text and set(s.text) <= set(IAM_CHARS) for s in samples)
    assert sum(len(s.text) for s in samples) == 8283
    assert all(s.image.dtype == np.uint8 and s.image.shape[0] == 32 and s.image.shape[1] > 1 for s in samples)


def test_version_and_image_source_come_from_the_manifest(shared_download):
    folder = shared_download("stanford-memorials")
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    ds = create_dataset("stanford-memorials", "test", DataConfig(height=32))
    assert ds.version == manifest["version"] and len(ds.version) == 12
    assert ds.image_source == REDUCED  # the shared mirror holds half-size copies


def test_train_split_is_refused_and_names_the_valid_split():
    with pytest.raises(UnknownNameError, match="'train'") as err:
        create_dataset("stanford-memorials", "train", DataConfig(height=32))
    assert err.value.valid == ["test"]


def test_nothing_is_packaged_but_the_recipe():
    assert not (PACKAGE / "datasets" / "assets" / "alto").exists()
    recipe = get_recipe("stanford-memorials")  # a pin, not a file list: 41 pages (JPG + XML) and CITATION.cff
    assert recipe.count + len(recipe.documents) == 83 and len(recipe.digest) == 64
    assert not [p for p in PACKAGE.rglob("*.py") if "../shared" in p.read_text()]


def test_cli_data_info(capsys):
    assert main(["data", "info", "stanford-memorials", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"] == ["test"] and out["needs_root"] is False
