"""The on-disk cache: atomic .npz writes, the cache-or-generate step of the generated datasets, the checked line
cache (bad files named or skipped and counted)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ocrbench.config import DataConfig
from ocrbench.data.cache import CachedLines, load_or_generate, save_npz
from ocrbench.errors import DataError


class Unsaveable:
    def __array__(self, *args, **kwargs):
        raise OSError("disk full")


def test_a_failing_save_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "split.npz"
    save_npz(path, {"a": np.arange(3)})
    with pytest.raises(OSError, match="disk full"):
        save_npz(path, {"a": np.arange(5), "b": Unsaveable()})
    assert [p.name for p in tmp_path.iterdir()] == ["split.npz"]
    with np.load(path) as z:
        assert z["a"].tolist() == [0, 1, 2]


def test_load_or_generate_generates_once_and_checks_the_key(tmp_path):
    path, calls = tmp_path / "split.npz", []

    def generate():
        calls.append(1)
        return {"x": np.arange(4)}

    def unpack(arrays):
        return {"total": int(arrays["x"].sum())}

    assert load_or_generate(path, {"seed": 0}, generate, unpack, "toy") == {"total": 6}
    assert load_or_generate(path, {"seed": 0}, generate, unpack, "toy") == {"total": 6} and len(calls) == 1
    with pytest.warns(UserWarning, match="toy cache .* key does not match"):  # a file renamed or hash-collided
        load_or_generate(path, {"seed": 1}, generate, unpack, "toy")
    assert len(calls) == 2
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="corrupt"):
        assert load_or_generate(path, {"seed": 1}, generate, unpack, "toy") == {"total": 6}
    assert len(calls) == 3 and [p.name for p in tmp_path.iterdir()] == ["split.npz"]


class Toy(CachedLines):
    """Three lines, the second from a broken file."""

    renders = 0

    def __init__(self, cfg: DataConfig):
        self.charset = None
        super().__init__("toy", cfg, {"toy": 1})

    def render_all(self):
        Toy.renders += 1
        yield "a", np.full((10, 20), 255, np.uint8), "a", Path("a.png"), None
        yield "b", None, "b", Path("/data/b.png"), "unreadable image (OSError: broken)"
        yield "c", np.full((20, 20), 255, np.uint8), "c", Path("c.png"), None


def test_bad_file_fails_naming_it_unless_skip_bad(tmp_path):
    cfg = DataConfig(height=8, cache_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"/data/b.png: unreadable.*--skip-bad"):
        len(Toy(cfg))
    ds = Toy(replace(cfg, skip_bad=True))
    assert len(ds) == 2 and [ds[i].text for i in range(2)] == ["a", "c"]
    assert ds[1].image.shape == (8, 8) and ds._record_index(1) == 2
    assert ds.integrity == {"bad_files": 1, "bad_examples": ["/data/b.png: unreadable image (OSError: broken) "
                                                             "(line b)"], "oov_replaced": {}}


def test_cache_keeps_the_count_and_a_corrupt_cache_is_rebuilt(tmp_path):
    cfg = DataConfig(height=8, cache_dir=str(tmp_path), skip_bad=True)
    Toy.renders = 0
    first = Toy(cfg)
    assert len(first) == 2
    again = Toy(cfg)
    assert len(again) == 2 and again.integrity["bad_files"] == 1 and Toy.renders == 1  # read from the cache
    again.cache_path.write_bytes(b"garbage")
    rebuilt = Toy(cfg)
    assert len(rebuilt) == 2 and Toy.renders == 2
    assert Toy(replace(cfg, height=16)).cache_path != first.cache_path
