"""The on-disk cache: atomic .npz writes and the cache-or-generate step of the generated datasets."""

from __future__ import annotations

import numpy as np
import pytest

from ocrbench.data.cache import load_or_generate, save_npz


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
