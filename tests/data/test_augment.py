"""The training augmentation policies: the mild one as it always was, the htr one on real-looking lines."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ocrbench.config import ConfigError, TrainConfig
from ocrbench.data import augment


def _line(width: int = 120, height: int = 32) -> np.ndarray:
    """Ink-bright strokes on a dark line: a few verticals and a baseline."""
    img = np.zeros((height, width), dtype=np.uint8)
    img[8:26, 10:width - 10:12] = 230
    img[24:26, 10 : width - 10] = 200
    return img


def test_mild_is_the_stretch_and_contrast_it_always_was():
    image = _line()
    got = augment.augment_line(image, np.random.default_rng(3))
    rng = np.random.default_rng(3)  # the pre-policy implementation, step by step
    stretched = Image.fromarray(image).resize((max(1, round(120 * rng.uniform(0.8, 1.25))), 32), Image.BILINEAR)
    expected = (np.asarray(stretched, dtype=np.float32) * rng.uniform(0.6, 1.0)).clip(0, 255).astype(np.uint8)
    assert np.array_equal(got, expected)


def test_htr_keeps_the_height_and_the_ink_and_varies_the_line():
    image = _line()
    outs = [augment.augment_line(image, np.random.default_rng(s), "htr") for s in range(40)]
    assert all(o.dtype == np.uint8 and o.shape[0] == 32 and o.max() > 50 for o in outs)  # contrast x blur: >= 0.25 of the ink
    mild = [augment.augment_line(image, np.random.default_rng(s)) for s in range(40)]
    assert sum(o.shape != m.shape or not np.array_equal(o, m) for o, m in zip(outs, mild)) >= 30
    again = augment.augment_line(image, np.random.default_rng(7), "htr")
    assert np.array_equal(again, outs[7])  # a pure function of its generator


def test_shear_widens_the_canvas_so_no_ink_is_cut():
    sheared = np.asarray(augment._shear(Image.fromarray(_line()), 0.25))
    assert sheared.shape == (32, 120 + 8)
    assert sheared.astype(int).sum() == pytest.approx(_line().astype(int).sum(), rel=0.05)


def test_unknown_policy_is_a_config_error_listing_the_policies():
    with pytest.raises(ConfigError, match="train.augmentation must be one of mild, htr"):
        TrainConfig(augmentation="heavy")
