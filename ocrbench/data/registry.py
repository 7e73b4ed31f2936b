"""The dataset registry's mechanism: ``register_dataset``, ``register_check`` and the tables they fill.

A dataset factory takes ``(split, cfg)`` and returns a ``torch.utils.data.Dataset`` of
:class:`~ocrbench.data.samples.LineSample` (line datasets) or page samples (page datasets). A check takes
``(root, **options)`` and returns an :class:`~ocrbench.data.integrity.CheckReport` (``ocrbench data check``).
Names of the form ``kind:PATH`` (``alto:/data/pages``) call the ``kind`` factory with ``cfg.root = PATH``.

The lookups (``create_dataset``, ``dataset_info``, ``list_datasets``, ``run_check``) live in
:mod:`ocrbench.datasets`, whose import registers every dataset (a scan of its folder, then entry points), so
this module never imports a dataset: the arrow points one way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import DataConfig
from ..errors import UnknownNameError, UserError


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
    # ocrbench makes the data (from registry-sourced assets): result rows may quote its lines. Every other
    # collection is the user's download, and rows keep none of its text (provenance: results are committed)
    generated: bool = False


Factory = Callable[[str, DataConfig], Any]
CheckFn = Callable[..., Any]  # (root, **options) -> CheckReport
_FACTORIES: dict[str, Factory] = {}
_INFOS: dict[str, DatasetInfo] = {}
_CHECKS: dict[str, CheckFn] = {}


class DuplicateDatasetError(ValueError):
    """Two factories (or two checks) claim the same dataset name."""


def register_dataset(name: str, *, task: str = "lines", splits=("train", "val", "test"), description: str,
                     license: str, citation: str = "", needs_root: bool = False, sizes: str = "",
                     charset: str = "", generated: bool = False):
    """Decorator registering a dataset factory ``fn(split, cfg) -> Dataset`` under ``name``."""

    def wrap(fn: Factory) -> Factory:
        if name in _FACTORIES:
            raise DuplicateDatasetError(f"dataset {name!r} is already registered")
        _FACTORIES[name] = fn
        _INFOS[name] = DatasetInfo(name, task, tuple(splits), description, license, citation, needs_root, sizes,
                                   charset, generated)
        return fn

    return wrap


def register_check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Decorator: ``fn(root, **options) -> CheckReport`` validates dataset ``name``'s files."""

    def wrap(fn: CheckFn) -> CheckFn:
        if name in _CHECKS:
            raise DuplicateDatasetError(f"a check for {name!r} is already registered")
        _CHECKS[name] = fn
        return fn

    return wrap


def resolve_options(dataset: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` (``DataConfig.options``) over the dataset's ``defaults``; a key the dataset does not know is a
    :class:`UserError` listing the valid ones. Each dataset then checks and normalises the values."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise UserError(f"unknown {dataset} option(s) {unknown}; valid: {sorted(defaults)}")
    return {**defaults, **options}


def split_name(name: str) -> tuple[str, str | None]:
    """``kind:PATH`` -> (kind, PATH); a plain name -> (name, None)."""
    kind, sep, path = name.partition(":")
    return (kind, path) if sep else (name, None)


def registered_names() -> list[str]:
    return sorted(_INFOS)


def registered(kind: str) -> tuple[DatasetInfo, Factory]:
    """The info and factory registered under ``kind``; an unknown name lists the close matches."""
    if kind not in _INFOS:
        raise UnknownNameError("dataset", kind, list(_INFOS))
    return _INFOS[kind], _FACTORIES[kind]


def registered_check(kind: str) -> CheckFn | None:
    return _CHECKS.get(kind)


def checkable_names() -> list[str]:
    return sorted(_CHECKS)
