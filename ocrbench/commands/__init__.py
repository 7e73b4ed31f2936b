"""CLI subcommands, one module each: a module here with ``register(subparsers)`` is a command (found by a scan,
so adding a command edits nothing else). ``ORDER`` only sets where the common ones appear in ``--help``."""

from __future__ import annotations

import importlib
import pkgutil

ORDER = ["list", "train", "eval", "run", "report", "ci", "data", "profile", "selftest", "page", "errors", "sanity",
         "curves", "sweep", "lr_find", "viz", "lm"]


def command_modules() -> list:
    """Every command module, the ones in ``ORDER`` first, then the rest by name."""
    names = [i.name for i in pkgutil.iter_modules(__path__) if not i.name.startswith("_") and i.name != "common"]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return [importlib.import_module(f"{__name__}.{n}") for n in names]
