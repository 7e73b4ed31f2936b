"""Model registry in the style of timm: ``@register_model`` on a small entry function.

An entry function takes ``charset`` plus keyword overrides and returns a model instance. The registry is
filled when ``ocrbench.models`` is imported (each reference model module registers itself).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from ..errors import UnknownNameError

_ENTRIES: dict[str, Callable] = {}
_MODULES: dict[str, str] = {}


def register_model(fn: Callable | None = None, *, task: str = "recognition"):
    """Register ``fn`` under its ``__name__``; use bare (recognizers) or as
    ``@register_model(task="detection")``. Registering a name twice is an error."""

    def wrap(fn: Callable) -> Callable:
        name = fn.__name__
        if name in _ENTRIES:
            raise ValueError(f"model {name!r} is already registered (by {_MODULES[name]})")
        fn.task = task
        _ENTRIES[name] = fn
        _MODULES[name] = fn.__module__
        return fn

    return wrap(fn) if fn is not None else wrap


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern``; ``task`` filters by
    ``"recognition"`` or ``"detection"``."""
    names = sorted(n for n in _ENTRIES if fnmatch.fnmatch(n, pattern))
    if task is not None:
        names = [n for n in names if model_task(n) == task]
    return names


def model_task(name: str) -> str:
    return _get(name).task


def _get(name: str) -> Callable:
    if name not in _ENTRIES:
        raise UnknownNameError("model", name, list(_ENTRIES))
    return _ENTRIES[name]


def create_model(name: str, charset=None, **kwargs):
    """Instantiate a registered model. ``charset`` defaults to the IAM charset; ``kwargs`` override the
    variant's defaults (e.g. ``input_height=32``)."""
    from ..data.charset import Charset

    fn = _get(name)
    model = fn(charset=charset or Charset(), **kwargs)
    model.name = name
    model.create_kwargs = dict(kwargs)  # saved in checkpoints so ``ocrbench eval`` can rebuild the model
    return model
