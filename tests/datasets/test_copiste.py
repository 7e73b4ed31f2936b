"""copiste-dun-jour: the real track's training collection (downloaded on request; tests use the shared copy)."""

from __future__ import annotations

import pytest

from ocrbench.config import DataConfig
from ocrbench.data.charset import REPLACEMENT_CHAR
from ocrbench.data.download import get_recipe
from ocrbench.datasets import copiste, create_dataset, dataset_info
from ocrbench.errors import NotDownloaded


def test_registered_with_document_splits():
    info = dataset_info("copiste-dun-jour")
    assert info.splits == ("train", "val", "test") and not info.needs_root and "CC BY 4.0" in info.license


def test_absent_download_names_the_command(tmp_path):
    with pytest.raises(NotDownloaded, match="ocrbench data download copiste-dun-jour"):
        create_dataset("copiste-dun-jour", "test", DataConfig(height=32, cache_dir=str(tmp_path)))


def test_test_documents_and_the_charset_of_the_training_split(shared_download):
    shared_download("copiste-dun-jour")
    test = create_dataset("copiste-dun-jour", "test", DataConfig(height=32))
    val = create_dataset("copiste-dun-jour", "val", DataConfig(height=32))
    assert len(test) == 614 and len(val) == 645
    assert test.charset == val.charset  # every split reads with the training split's charset
    chars = test.charset.chars
    assert len(chars) == 113 and chars.endswith(REPLACEMENT_CHAR) and {"é", "à", "ç", "ê", "É"} <= set(chars)
    assert "Ê" not in chars and "π" not in chars  # seen fewer than 5 times in training
    documents = {test[i].meta["document"] for i in range(len(test))}
    assert len(documents) == 27 and all(d == copiste.document_id(d) for d in documents)
    assert all(set(test[i].text) <= set(chars) for i in range(len(test)))
    assert sum(test.charset.stats.replaced.values()) > 0  # rare characters are mapped and counted, not dropped


def test_a_stricter_minimum_count_keeps_fewer_characters(shared_download):
    shared_download("copiste-dun-jour")
    cfg = DataConfig(height=32, options={"charset_min_count": 20})
    assert len(create_dataset("copiste-dun-jour", "test", cfg).charset) == 95


def test_document_ids_join_the_pages_and_copies_of_a_text():
    assert {copiste.document_id(s) for s in ("wikitexte_0016_1", "wikitexte_0016_3", "wikitexte_0016")} == {
        "wikitexte_0016"}
    assert copiste.document_id("imp_wikitexte_0172_double") == "imp_wikitexte_0172" != copiste.document_id("wikitexte_0172_2")


def test_the_recipe_postprocess_is_registered_here():
    from ocrbench.data.download import postprocessor

    assert postprocessor(get_recipe("copiste-dun-jour")) is copiste.document_splits
