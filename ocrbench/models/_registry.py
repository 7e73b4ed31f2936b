"""Model registry in the style of timm: ``@register_model`` on a small entry function.

An entry function takes ``charset`` plus keyword overrides and returns a model instance. Models come from two
places, so that adding one never means editing a list:

- every public module of ``ocrbench.models`` (name not starting with ``_``), imported by the package's
  ``__init__`` through :func:`ocrbench._plugins.import_modules`;
- installed distributions that declare the entry-point group ``ocrbench.models``, e.g. in their pyproject.toml
  ``[project.entry-points."ocrbench.models"]`` / ``mynet = "my_package.mynet"``. Each is imported once, on the
  first registry lookup (:func:`list_models`, :func:`model_task`, :func:`create_model`); one that fails to
  import is skipped with a warning naming it.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from collections.abc import Callable, Iterable
from importlib import metadata

from .._plugins import load_entry_points
from ..data.charset import Charset
from ..errors import UnknownNameError

ENTRY_POINT_GROUP = "ocrbench.models"

_ENTRIES: dict[str, Callable] = {}
_MODULES: dict[str, str] = {}
_plugins_loaded = False


class DuplicateModelError(ValueError):
    """Two entry functions claim the same model name."""


def register_model(fn: Callable | None = None, *, task: str = "recognition", version: int = 1):
    """Register ``fn`` under its ``__name__``; use bare (recognizers) or as
    ``@register_model(task="detection")``. Registering a name twice is an error.

    ``version``: raise it when a change to the model's code or defaults changes what it learns. It is part of
    every run's identity (from 2 on; version 1 leaves the hash as it was), so results of the old code are
    neither resumed nor counted as done, and are never averaged with the new."""

    def wrap(fn: Callable) -> Callable:
        name = fn.__name__
        if name in _ENTRIES:
            raise DuplicateModelError(f"model {name!r} of {fn.__module__} is already registered "
                                      f"(by {_MODULES[name]}): give one of them another name")
        fn.task, fn.version = task, version
        _ENTRIES[name] = fn
        _MODULES[name] = fn.__module__
        return fn

    return wrap(fn) if fn is not None else wrap


def plugin_entry_points() -> Iterable[metadata.EntryPoint]:
    """The installed entry points of group ``ocrbench.models``."""
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_plugins() -> None:
    """Import the modules named by the ``ocrbench.models`` entry points (once per process). A plugin that fails
    to import is skipped with one warning; a plugin that registers a taken name raises DuplicateModelError."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True  # before loading: a plugin that lists models while it is imported must not recurse
    load_entry_points(plugin_entry_points(), "model", fatal=(DuplicateModelError,))


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern``; ``task`` filters by
    ``"recognition"`` or ``"detection"``."""
    load_plugins()
    names = sorted(n for n in _ENTRIES if fnmatch.fnmatch(n, pattern))
    if task is not None:
        names = [n for n in names if model_task(n) == task]
    return names


def model_task(name: str) -> str:
    return _get(name).task


def model_description(name: str) -> str:
    """The first sentence of the entry function's docstring (what this variant is), else of its module's (the
    family and its paper): what `ocrbench list models` shows."""
    fn = _get(name)
    doc = fn.__doc__ or importlib.import_module(fn.__module__).__doc__ or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    end = re.search(r"\.\s(?=[A-Z])", paragraph)  # a sentence's end; not "et al. 2017"
    return paragraph if end is None else paragraph[:end.start() + 1]


def model_version(name: str) -> int:
    """The registered version of model ``name`` (see :func:`register_model`)."""
    return _get(name).version


def _get(name: str) -> Callable:
    load_plugins()
    if name not in _ENTRIES:
        raise UnknownNameError("model", name, list(_ENTRIES))
    return _ENTRIES[name]


def create_model(name: str, charset: Charset | None = None, **kwargs):
    """Instantiate a registered model. ``charset`` defaults to the IAM charset; ``kwargs`` override the
    variant's defaults (e.g. ``input_height=32``)."""
    fn = _get(name)
    model = fn(charset=charset or Charset(), **kwargs)
    model.name = name
    model.create_kwargs = dict(kwargs)  # saved in checkpoints so ``ocrbench eval`` can rebuild the model
    return model
