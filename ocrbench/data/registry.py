"""Dataset registry: ``register_dataset``, ``create_dataset``, ``list_datasets``.

A dataset factory takes ``(split, cfg)`` and returns a ``torch.utils.data.Dataset`` of
:class:`~ocrbench.data.samples.LineSample` (line datasets) or page samples (page datasets).
Names of the form ``kind:PATH`` (``alto:/data/pages``) call the ``kind`` factory with ``cfg.root = PATH``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import UnknownNameError, UserError


@dataclass(frozen=True)
class DataConfig:
    """Which data, how much of it, and how it is shaped. Shared by every model of a suite."""

    name: str = "synth-lines"
    root: str | None = None  # folder of a user-supplied dataset (IAM, ALTO...), or PATH of ``kind:PATH``
    train_size: int = 20000  # generated datasets only
    val_size: int = 500
    test_size: int = 1000
    seed: int = 0  # the data seed: fixed so that test splits are identical across runs and machines
    height: int = 64  # line images are resized to this height, aspect ratio kept
    oov: str = "error"  # out-of-charset policy: "error" or "replace" (see ocrbench.data.charset)
    skip_bad: bool = False  # skip (and count) unreadable files instead of failing
    cache_dir: str | None = None  # default: $OCRBENCH_CACHE or ~/.cache/ocrbench
    options: Mapping[str, Any] = field(default_factory=dict)  # dataset-specific extras

    def size_of(self, split: str) -> int:
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}[split]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str  # "lines" or "pages"
    splits: tuple[str, ...]
    description: str
    license: str
    citation: str = ""
    needs_root: bool = False  # user-supplied files (IAM, ALTO folders)
    sizes: str = ""  # what the splits hold, e.g. "train 6,482 / val 976 / test 2,915 lines"
    charset: str = ""  # the dataset's characters, e.g. "IAM (79)"


Factory = Callable[[str, DataConfig], Any]
_FACTORIES: dict[str, Factory] = {}
_INFOS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, task: str = "lines", splits=("train", "val", "test"), description: str,
                     license: str, citation: str = "", needs_root: bool = False, sizes: str = "",
                     charset: str = ""):
    """Decorator registering a dataset factory ``fn(split, cfg) -> Dataset`` under ``name``."""

    def wrap(fn: Factory) -> Factory:
        if name in _FACTORIES:
            raise ValueError(f"dataset {name!r} is already registered")
        _FACTORIES[name] = fn
        _INFOS[name] = DatasetInfo(name, task, tuple(splits), description, license, citation, needs_root, sizes,
                                   charset)
        return fn

    return wrap


def resolve_options(dataset: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` (``DataConfig.options``) over the dataset's ``defaults``; a key the dataset does not know is a
    :class:`UserError` listing the valid ones. Each dataset then checks and normalises the values."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise UserError(f"unknown {dataset} option(s) {unknown}; valid: {sorted(defaults)}")
    return {**defaults, **options}


def _split_name(name: str) -> tuple[str, str | None]:
    kind, sep, path = name.partition(":")
    return (kind, path) if sep else (name, None)


def dataset_info(name: str) -> DatasetInfo:
    _import_builtin()
    kind, _ = _split_name(name)
    if kind not in _INFOS:
        raise UnknownNameError("dataset", kind, list(_INFOS))
    return _INFOS[kind]


def create_dataset(name: str, split: str, cfg: DataConfig | None = None):
    """Build split ``split`` of dataset ``name`` (``kind:PATH`` sets the root)."""
    info = dataset_info(name)
    kind, path = _split_name(name)
    cfg = replace(cfg or DataConfig(), name=name)
    if path:
        cfg = replace(cfg, root=path)
    if split not in info.splits:
        raise UnknownNameError(f"split of {kind}", split, list(info.splits))
    return _FACTORIES[kind](split, cfg)


def list_datasets(pattern: str = "*") -> list[str]:
    _import_builtin()
    return sorted(n for n in _INFOS if fnmatch.fnmatch(n, pattern))


def _import_builtin() -> None:
    from . import _builtin  # noqa: F401  (registers the datasets shipped with ocrbench)
