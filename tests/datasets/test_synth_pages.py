"""synth-pages: determinism, cache, exact line boxes, split hygiene, options (tiny 256-px pages, CPU)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ocrbench.config import DataConfig
from ocrbench.datasets import create_dataset, dataset_info, list_datasets
from ocrbench.datasets import synth_pages as sp
from ocrbench.errors import UserError

HEIGHT = 256


@pytest.fixture
def cfg(tmp_path) -> DataConfig:
    return DataConfig(name="synth-pages", height=HEIGHT, train_size=6, val_size=3, test_size=4,
                      cache_dir=str(tmp_path))


def _pages(ds) -> list[tuple[bytes, bytes, list[str]]]:
    return [(ds[i].image.tobytes(), ds[i].boxes.tobytes(), ds[i].texts) for i in range(len(ds))]


def test_registered_as_a_page_dataset(cfg):
    assert "synth-pages" in list_datasets()
    assert dataset_info("synth-pages").task == "pages"
    ds = create_dataset("synth-pages", "val", cfg)
    assert isinstance(ds, sp.SynthPages) and len(ds) == 3


def test_render_page_is_pure():
    opts = sp.parse_options({})
    (a, ba, ta), (b, bb, tb) = (sp.render_page("train", 2, 0, HEIGHT, opts) for _ in range(2))
    assert a.tobytes() == b.tobytes() and ba.tobytes() == bb.tobytes() and ta == tb


def test_fresh_instances_and_cache_reload_identical(cfg, tmp_path):
    first = sp.SynthPages("train", cfg)
    assert _pages(first) and first.cache_path.exists()
    reloaded = sp.SynthPages("train", cfg)  # reads the cache the first one wrote
    elsewhere = sp.SynthPages("train", replace(cfg, cache_dir=str(tmp_path / "other")))  # renders again
    assert _pages(first) == _pages(reloaded) == _pages(elsewhere)


def test_parallel_generation_is_identical():
    opts = sp.parse_options({})
    serial = sp.generate("val", 4, 0, HEIGHT, opts, workers=1, progress=False, chunk=2)
    parallel = sp.generate("val", 4, 0, HEIGHT, opts, workers=2, progress=False, chunk=2)
    assert all(a[0].tobytes() == b[0].tobytes() and a[2] == b[2] for a, b in zip(serial, parallel))


def test_seed_and_split_change_the_pages(cfg):
    base = sp.SynthPages("test", cfg)
    assert _pages(base) != _pages(sp.SynthPages("test", replace(cfg, seed=1)))
    # sentences are split-disjoint; only short lines ("and the") could coincide by chance
    texts = {t for i in range(len(base)) for t in base[i].texts if len(t) >= 20}
    train = sp.SynthPages("train", cfg)
    assert not texts & {t for i in range(len(train)) for t in train[i].texts}


def test_pages_are_ink_bright_uint8_with_valid_boxes(cfg):
    ds = sp.SynthPages("train", cfg)
    for i in range(len(ds)):
        s = ds[i]
        h, w = s.image.shape
        assert s.image.dtype == np.uint8 and h == HEIGHT and 0.5 * HEIGHT < w <= HEIGHT
        assert np.median(s.image) < 90 and s.image.max() > 150  # dark paper, bright ink
        assert s.boxes.dtype == np.float32 and s.boxes.shape == (len(s.texts), 4) and len(s.texts) >= 2
        assert (s.boxes[:, 0] >= 0).all() and (s.boxes[:, 1] >= 0).all()
        assert (s.boxes[:, 2] <= w).all() and (s.boxes[:, 3] <= h).all()
        assert (s.boxes[:, 2] > s.boxes[:, 0]).all() and (s.boxes[:, 3] > s.boxes[:, 1]).all()
        assert all(t.strip() for t in s.texts)
        # reading order: lines go down the page
        assert (np.diff((s.boxes[:, 1] + s.boxes[:, 3]) / 2) > 0).mean() > 0.8


def test_boxes_are_tight_around_the_ink():
    """Every box holds ink up to each of its four edges, and almost no ink lies outside all boxes."""
    opts = sp.parse_options({})
    for index in range(3):
        clean, boxes, _ = sp.render_page("test", index, 0, HEIGHT, opts)
        covered = np.zeros(clean.shape, dtype=bool)
        for x0, y0, x1, y1 in boxes.astype(int):
            region = clean[y0:y1, x0:x1] > 24
            assert region[0].any() and region[-1].any() and region[:, 0].any() and region[:, -1].any()
            covered[y0:y1, x0:x1] = True
        ink = clean > 60
        assert (ink & ~covered).sum() <= 0.03 * ink.sum()  # small marks are the only ink outside lines


def test_bad_options_and_heights_are_clear_errors(cfg):
    with pytest.raises(UserError, match="unknown synth-pages option"):
        sp.SynthPages("train", replace(cfg, options={"no_such": 1}))
    with pytest.raises(UserError, match="page height"):
        sp.SynthPages("train", replace(cfg, height=64))
    with pytest.raises(UserError, match="pitch"):
        sp.SynthPages("train", replace(cfg, options={"pitch": [0.1, 0.05]}))


def test_options_shape_the_pages(cfg):
    dense = sp.SynthPages("val", replace(cfg, options={"pitch": [0.03, 0.03]}))
    sparse = sp.SynthPages("val", replace(cfg, options={"pitch": [0.09, 0.09]}))
    n_dense = sum(len(dense[i].texts) for i in range(3))
    n_sparse = sum(len(sparse[i].texts) for i in range(3))
    assert n_dense > 2 * n_sparse


def test_corrupt_cache_is_regenerated(cfg):
    ds = sp.SynthPages("val", cfg)
    want = _pages(ds)
    ds.cache_path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="corrupt"):
        again = _pages(sp.SynthPages("val", cfg))
    assert again == want


def test_index_out_of_range(cfg):
    with pytest.raises(IndexError):
        sp.SynthPages("val", cfg)[3]
