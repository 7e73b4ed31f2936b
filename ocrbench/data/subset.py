"""``data.train_lines``: a fixed subset of a training split, the data-efficiency axis of the real track."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from ..errors import UserError


class LineSubset(Dataset):
    """The first ``n`` lines of a permutation of ``dataset`` seeded by ``seed``, so subsets are nested (the 250
    lines are among the 1,000). Everything else (charset, version, skipped files) is the full split's: a model
    trained on 250 lines reads with the same charset as one trained on all of them."""

    def __init__(self, dataset: Dataset, n: int, seed: int):
        if n > len(dataset):
            raise UserError(f"data.train_lines={n}, but the training split has only {len(dataset)} lines")
        self.dataset = dataset
        self.indices = np.random.default_rng([seed, 271828]).permutation(len(dataset))[:n]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[int(self.indices[index])]

    def sample_meta(self, index: int) -> dict:
        return self.dataset.sample_meta(int(self.indices[index]))

    def widths(self) -> np.ndarray:
        if hasattr(self.dataset, "widths"):
            return np.asarray(self.dataset.widths())[self.indices]
        return np.array([self[i].image.shape[1] for i in range(len(self))])

    def __getattr__(self, name: str):  # charset, version, bad_files...: the full split's
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
