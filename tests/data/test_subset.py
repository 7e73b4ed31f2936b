"""data.train_lines: nested, seeded subsets of a training split."""

import pytest

from ocrbench.config import DataConfig
from ocrbench.data.subset import LineSubset
from ocrbench.datasets import create_dataset
from ocrbench.errors import UserError

CFG = DataConfig(height=32, train_size=60, val_size=4, test_size=4, options={"max_chars": 6})


def test_subsets_are_nested_and_keep_the_full_splits_charset():
    full = create_dataset("synth-lines", "train", CFG)
    small, large = LineSubset(full, 10, seed=0), LineSubset(full, 40, seed=0)
    assert len(small) == 10 and set(small.indices) <= set(large.indices)
    assert getattr(small, "charset", None) is getattr(full, "charset", None)
    assert small[3].text == full[int(small.indices[3])].text
    assert list(small.widths()) == [full[int(i)].image.shape[1] for i in small.indices]


def test_the_config_field_subsets_only_the_training_split():
    cfg = DataConfig(**{**CFG.__dict__, "train_lines": 25})
    assert len(create_dataset("synth-lines", "train", cfg)) == 25
    assert len(create_dataset("synth-lines", "test", cfg)) == 4


def test_more_lines_than_the_split_has_is_one_clear_error():
    with pytest.raises(UserError, match="train_lines=99, but the training split has only 60 lines"):
        create_dataset("synth-lines", "train", DataConfig(**{**CFG.__dict__, "train_lines": 99}))
