"""Reporting: leaderboards (intervals, ties), detection tables, plots, comparisons between result folders."""


def __getattr__(name: str):
    # the old module ocrbench.report is ocrbench.report.leaderboard now (issue 23); its names keep working a while
    import importlib
    import warnings

    # not ``from . import leaderboard``: that asks this function for ``leaderboard`` again while it is not loaded
    leaderboard = importlib.import_module(f"{__name__}.leaderboard")

    if name.startswith("__") or not hasattr(leaderboard, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"ocrbench.report.{name} moved to ocrbench.report.leaderboard.{name}", DeprecationWarning,
                  stacklevel=2)
    return getattr(leaderboard, name)
