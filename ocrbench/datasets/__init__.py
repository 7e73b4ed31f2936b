"""Datasets, one file each (synthetic lines/pages, EMNIST, IAM, ALTO/PAGE folders, downloadable collections).

Adding a dataset is one file: put it in this folder (or in your own package, under the entry-point group
``ocrbench.datasets``) and decorate its factory ``fn(split, cfg) -> Dataset`` with ``@register_dataset``;
nothing else is edited. Every public module of this folder is imported at the end of this file, after the
public names below exist; the entry points are imported on the first lookup. ``assets/`` vendors only
registry-sourced files.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from .._plugins import import_modules, load_entry_points
from ..config import DataConfig
from ..data.integrity import CheckReport
from ..data.registry import (
    DatasetInfo,
    DuplicateDatasetError,
    checkable_names,
    register_check,
    register_dataset,
    registered,
    registered_check,
    registered_names,
    resolve_options,
    split_name,
)
from ..data.subset import LineSubset
from ..errors import UnknownNameError

__all__ = ["DataConfig", "DatasetInfo", "create_dataset", "dataset_info", "list_datasets", "register_check",
           "register_dataset", "resolve_options", "run_check"]

ENTRY_POINT_GROUP = "ocrbench.datasets"
_plugins_loaded = False


def load_plugins() -> None:
    """Import the modules named by the ``ocrbench.datasets`` entry points (once per process); one that fails
    to import is skipped with a warning, one that registers a taken name raises."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True  # before loading: a plugin that lists datasets while it is imported must not recurse
    load_entry_points(metadata.entry_points(group=ENTRY_POINT_GROUP), "dataset", fatal=(DuplicateDatasetError,))


def dataset_info(name: str) -> DatasetInfo:
    """What is registered under ``name`` (or the ``kind`` of ``kind:PATH``)."""
    load_plugins()
    return registered(split_name(name)[0])[0]


def list_datasets(pattern: str = "*") -> list[str]:
    load_plugins()
    return [n for n in registered_names() if fnmatch.fnmatch(n, pattern)]


def create_dataset(name: str, split: str, cfg: DataConfig | None = None):
    """Build split ``split`` of dataset ``name`` (``kind:PATH`` sets the root); with ``data.train_lines`` the
    training split is a fixed subset of that many lines (:class:`~ocrbench.data.subset.LineSubset`)."""
    load_plugins()
    kind, path = split_name(name)
    info, factory = registered(kind)
    cfg = replace(cfg or DataConfig(), name=name)
    if path:
        cfg = replace(cfg, root=path)
    if split not in info.splits:
        raise UnknownNameError(f"{kind} split", split, list(info.splits))
    dataset = factory(split, cfg)
    if split == "train" and cfg.train_lines is not None:
        return LineSubset(dataset, cfg.train_lines, cfg.seed)
    return dataset


def run_check(name: str, root: str | Path | None, **options) -> CheckReport:
    """Validate the files of dataset ``name`` (``kind:PATH`` sets the root): ``ocrbench data check``."""
    kind, path = split_name(name)
    root = path or root
    info = dataset_info(kind)  # an unknown name lists the valid ones
    check = registered_check(kind)
    if check is None:
        if not info.needs_root:
            report = CheckReport(kind, None)
            report.notes.append(f"{kind} is generated or embedded; there are no user files to check")
            return report
        raise UnknownNameError("checkable dataset", kind, checkable_names())
    if root is None:
        report = CheckReport(kind, None)
        report.fail("no folder given", f"pass --root PATH (the folder holding {kind})")
        return report
    return check(Path(root).expanduser(), **options)


# Last: dataset modules import the names above from this (then partially initialised) package.
DATASET_MODULES = import_modules(__name__, __path__)
