"""EMNIST glyph pools (the shared WebP-mosaic test pool, torchvision's IDX layout on the shared MNIST t10k files
and on generated EMNIST files) and emnist-lines."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocrbench.config import DataConfig
from ocrbench.datasets import create_dataset, emnist, emnist_lines, run_check
from ocrbench.errors import DataError

POOL_DIR = Path("/work/shared/data/emnist/byclass-test")
MNIST_ROOT = Path("/work/shared/data/mnist")
needs_pool = pytest.mark.skipif(not (POOL_DIR / "test.json").is_file(), reason="shared EMNIST pool not present")
needs_mnist = pytest.mark.skipif(not (MNIST_ROOT / "MNIST" / "raw").is_dir(), reason="shared MNIST not present")


# ---- the WebP-mosaic pool ---------------------------------------------------------------------------------
@needs_pool
def test_mosaic_pool_matches_its_description():
    pool = emnist.load_mosaic_pool(POOL_DIR)
    meta = json.loads((POOL_DIR / "test.json").read_text())
    assert pool.images.shape == (emnist.POOL_SIZE, 28, 28) and pool.images.dtype == np.uint8
    assert pool.mapping == emnist.BYCLASS == "".join(map(chr, meta["mapping"]))
    assert len(pool.chars) == 62
    # Tiles sit row-major, 127 per row; check glyphs of the first and the last mosaic against their ink boxes.
    for k in (0, 1, 126, 127, 16128, 16129, emnist.POOL_SIZE - 1):
        x0, y0, x1, y1 = meta["bbox"][k]
        glyph = pool.images[k]
        assert glyph[y0:y1 + 1, x0:x1 + 1].sum() == glyph.sum() > 0, k


@needs_pool
def test_partition_is_disjoint_stratified_and_independent_of_data_seed():
    pool = emnist.load_mosaic_pool(POOL_DIR)
    train, val, test = emnist.partition(pool.labels, (0.8, 0.1, 0.1))
    assert len(train) + len(val) + len(test) == len(pool)
    assert not set(train) & set(test) and not set(val) & set(test) and not set(train) & set(val)
    assert set(pool.labels[test]) == set(pool.labels[train]) == set(range(62))  # every class in every split
    again = emnist.partition(pool.labels, (0.8, 0.1, 0.1))[2]
    assert np.array_equal(test, again)


def test_known_pool_file_with_the_wrong_size_is_named(tmp_path):
    files = [n for n in emnist.KNOWN_POOL_FILES if n.endswith(".webp")]
    (tmp_path / "test.json").write_text(json.dumps({"mapping": [48], "id": [0], "bbox": [[0, 0, 1, 1]],
                                                    "files": files, "width": 28, "height": 28}))
    (tmp_path / "X_test_0_to_16128.webp").write_bytes(b"truncated")
    with pytest.raises(DataError, match="X_test_0_to_16128.webp: size 9 bytes|test.json: size"):
        emnist.load_mosaic_pool(tmp_path)


def test_small_pool_in_the_same_format(tmp_path):
    """Any folder in the mosaic format works: 5 glyphs in a 3-per-row mosaic."""
    glyphs = np.zeros((5, 28, 28), np.uint8)
    for k in range(5):
        glyphs[k, 4:24, 4 + k:8 + k] = 255
    mosaic = np.zeros((56, 84), np.uint8)
    for k in range(5):
        mosaic[(k // 3) * 28:(k // 3 + 1) * 28, (k % 3) * 28:(k % 3 + 1) * 28] = glyphs[k]
    Image.fromarray(mosaic).convert("RGB").save(tmp_path / "X_test_0_to_4.webp", lossless=True)
    (tmp_path / "test.json").write_text(json.dumps({"mapping": [49, 108], "id": [0, 1, 0, 1, 0], "bbox": [],
                                                    "files": ["X_test_0_to_4.webp"], "width": 28, "height": 28}))
    pool = emnist.load_mosaic_pool(tmp_path)
    assert np.array_equal(pool.images, glyphs) and pool.mapping == "1l" and list(pool.labels) == [0, 1, 0, 1, 0]


# ---- torchvision's layout ---------------------------------------------------------------------------------
@needs_mnist
def test_mnist_t10k_through_torchvision_readers(tmp_path):
    pool = emnist.load_torchvision(MNIST_ROOT, "MNIST", train=False, cache=tmp_path)
    assert pool.images.shape == (10000, 28, 28) and pool.mapping == "0123456789"
    assert list(pool.labels[:5]) == [7, 2, 1, 0, 4]  # MNIST t10k's first labels
    assert pool.images[0].max() == 255 and pool.images[0][0].max() == 0  # bright digit on black, margin blank
    assert not any((MNIST_ROOT / "MNIST" / "raw").glob("*-ubyte"))  # decompressed into the cache only
    assert any((tmp_path / "idx").rglob("t10k-images-idx3-ubyte"))


@needs_mnist
def test_mnist_gz_checksum_is_verified(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(MNIST_ROOT / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", raw)
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + bytes(12))
    with pytest.raises(DataError, match="md5"):
        emnist.load_torchvision(tmp_path, "MNIST", train=False, cache=tmp_path / "cache")


def _write_idx(path: Path, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> None:
    if images is not None:
        data = struct.pack(">IIII", 0x0803, *images.shape) + images.astype(np.uint8).tobytes()
    else:
        data = struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_emnist(root: Path, per_class: int = 10) -> np.ndarray:
    """EMNIST ByClass in torchvision's layout, images stored transposed as the real files are. Each glyph is
    an upright 'L' (left bar + bottom bar), so orientation mistakes show."""
    raw = root / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    upright = np.zeros((28, 28), np.uint8)
    upright[4:24, 6:9] = 255
    upright[21:24, 6:20] = 255
    labels = np.repeat(np.arange(62), per_class)
    stored = np.repeat(upright.T[None], len(labels), axis=0)
    for split, suffix in (("train", ""), ("test", ".gz")):
        _write_idx(raw / f"emnist-byclass-{split}-images-idx3-ubyte{suffix}", images=stored)
        _write_idx(raw / f"emnist-byclass-{split}-labels-idx1-ubyte{suffix}", labels=labels)
    return upright


def test_generated_emnist_is_read_upright_with_byclass_mapping(tmp_path):
    upright = make_emnist(tmp_path / "data")
    assert emnist.detect_format(tmp_path / "data") == "emnist"
    test = emnist.split_pool(tmp_path / "data", "test", cache=tmp_path / "cache")  # from .gz files
    assert len(test) == 620 and np.array_equal(test.images[0], upright)
    assert test.mapping[test.labels[10]] == "1" and test.mapping[61] == "z"
    train = emnist.split_pool(tmp_path / "data", "train", cache=tmp_path / "cache")
    val = emnist.split_pool(tmp_path / "data", "val", cache=tmp_path / "cache")
    assert len(train) + len(val) == 620 and len(val) == 62


def test_emnist_lines_from_torchvision_layout(tmp_path):
    make_emnist(tmp_path / "data")
    cfg = DataConfig(root=str(tmp_path / "data"), height=32, train_size=3, val_size=3, test_size=3,
                     cache_dir=str(tmp_path / "cache"))
    ds = create_dataset("emnist-lines", "train", cfg)
    assert len(ds) == 3 and all(ds[i].image.shape[0] == 32 for i in range(3))


def test_missing_emnist_names_the_places_searched(tmp_path, monkeypatch):
    monkeypatch.delenv("OCRBENCH_EMNIST", raising=False)
    with pytest.raises(DataError, match="data.root"):
        create_dataset("emnist-lines", "test", DataConfig(cache_dir=str(tmp_path)))
    with pytest.raises(DataError, match="EMNIST/raw"):
        create_dataset("emnist-lines", "test", DataConfig(root=str(tmp_path), cache_dir=str(tmp_path)))
    report = run_check("emnist", tmp_path)
    assert not report.ok and "torchvision" in report.hint


# ---- emnist-lines on the real pool ------------------------------------------------------------------------
@pytest.fixture
def lines_cfg(tmp_path) -> DataConfig:
    return DataConfig(root=str(POOL_DIR), height=32, train_size=6, val_size=4, test_size=8,
                      cache_dir=str(tmp_path / "cache"))


@needs_pool
def test_emnist_lines_are_deterministic_and_cached(lines_cfg, tmp_path, monkeypatch):
    a = create_dataset("emnist-lines", "test", lines_cfg)
    b = create_dataset("emnist-lines", "test", replace(lines_cfg, cache_dir=str(tmp_path / "other")))
    assert len(a) == 8
    assert [a[i].image.tobytes() for i in range(8)] == [b[i].image.tobytes() for i in range(8)]
    assert [a[i].text for i in range(8)] == [b[i].text for i in range(8)]
    monkeypatch.setattr(emnist_lines.EmnistLines, "render_all", lambda self: pytest.fail("cache not used"))
    c = create_dataset("emnist-lines", "test", lines_cfg)
    assert [c[i].text for i in range(8)] == [a[i].text for i in range(8)]


@needs_pool
def test_emnist_lines_shape_text_and_charset(lines_cfg):
    ds = create_dataset("emnist-lines", "val", lines_cfg)
    assert ds.charset.chars == " " + emnist.BYCLASS and len(ds.charset) == 63
    for i in range(len(ds)):
        s = ds[i]
        assert s.image.dtype == np.uint8 and s.image.shape[0] == 32 and s.image.max() > 128
        assert 4 <= len(s.text) <= 32 and set(s.text) <= set(ds.charset.chars)
        assert ds.charset.encode(s.text)
    other_seed = create_dataset("emnist-lines", "val", replace(lines_cfg, seed=1))
    assert [other_seed[i].text for i in range(4)] != [ds[i].text for i in range(4)]


@needs_pool
def test_emnist_lines_use_only_their_splits_glyphs(lines_cfg):
    train, test = (create_dataset("emnist-lines", s, lines_cfg).pool for s in ("train", "test"))
    seen = {g.tobytes() for g in train.images}
    assert not any(g.tobytes() in seen for g in test.images[:2000])


def test_text_reduction_to_glyph_characters():
    assert emnist_lines.to_glyph_text("Don't — stop, Émile! 42", emnist.BYCLASS) == "Dont stop Emile 42"


def test_case_is_visible_in_glyph_size():
    assert emnist_lines.glyph_metrics("o", 0.6)[0] < emnist_lines.glyph_metrics("O", 0.6)[0]
    assert emnist_lines.glyph_metrics("p", 0.6)[1] > 0 == emnist_lines.glyph_metrics("P", 0.6)[1]


@needs_pool
def test_emnist_single_characters(lines_cfg):
    ds = create_dataset("emnist", "test", lines_cfg)
    s = ds[0]
    assert len(ds) > 10000 and len(s.text) == 1 and s.image.shape == (28, 32)


@needs_pool
def test_check_emnist_pool_verifies_checksums():
    report = run_check("emnist-lines", POOL_DIR)
    assert report.ok and not report.bad_files and report.counts["classes"] == 62




def test_emnist_lines_config_runs_on_a_torchvision_folder(tmp_path):
    from ocrbench.config import load_suite, resolve_config

    make_emnist(tmp_path / "data")
    cfg = load_suite(resolve_config("emnist_lines"), {"data.root": str(tmp_path / "data"), "data.test_size": 2,
                                                       "data.cache_dir": str(tmp_path / "cache")})
    ds = create_dataset(cfg.data.name, cfg.eval_split, cfg.data)
    assert cfg.data.name == "emnist-lines" and len(ds) == 2 and ds[0].image.shape[0] == cfg.data.height
