"""How the registries find what registers itself: a package scan and entry-point groups.

Shared by the model registry (:mod:`ocrbench.models`, group ``ocrbench.models``) and the dataset registry
(:mod:`ocrbench.datasets`, group ``ocrbench.datasets``), so adding either is one file and no list is edited.
Ground floor: imports nothing of ours.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Iterable
from importlib import metadata


def import_modules(package: str, path: Iterable[str]) -> list[str]:
    """Import every module and subpackage of ``package`` (found on ``path``, its ``__path__``) whose name does
    not start with ``_``, so that their registering decorators run. Shared code (base classes, blocks) is
    imported too: it registers nothing, and the registered modules import it anyway. Returns the module names."""
    names = sorted(info.name for info in pkgutil.iter_modules(list(path)) if not info.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


def load_entry_points(entry_points: Iterable[metadata.EntryPoint], what: str,
                      fatal: tuple[type[BaseException], ...] = ()) -> None:
    """Import each entry point's module. One that fails to import is skipped with one warning naming it (a
    broken third-party package must not take the benchmark down); ``fatal`` errors (a name registered twice)
    are raised."""
    for entry_point in entry_points:
        try:
            entry_point.load()
        except fatal:
            raise
        except Exception as error:
            dist = getattr(entry_point, "dist", None)
            source = f" of distribution {dist.name!r}" if dist is not None else ""
            warnings.warn(f"skipped {what} plugin {entry_point.name!r} ({entry_point.value}){source}: it failed "
                          f"to import with {type(error).__name__}: {error}. Its {what}s are not available; fix or "
                          f"uninstall it.", RuntimeWarning, stacklevel=4)
