"""Progress bars: one factory, so ``--quiet`` and logs that are not terminals silence every bar of the process,
including those drawn deep inside (data generation runs lazily, with no ``progress`` argument to pass)."""

from __future__ import annotations

import sys

from tqdm import tqdm

_quiet = False  # set once per command by ocrbench.cli.main from --quiet


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = bool(quiet)


def progress_enabled(requested: bool = True) -> bool:
    """Asked for, not ``--quiet``, and stderr is a terminal (a bar written to a log file is megabytes of
    carriage returns)."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(requested) and not _quiet and isatty is not None and isatty()


def progress_bar(iterable=None, progress: bool = True, **kwargs) -> tqdm:
    return tqdm(iterable, disable=not progress_enabled(progress), leave=False, **kwargs)
