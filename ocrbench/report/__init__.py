"""Reporting: leaderboards (intervals, ties), detection tables, plots, comparisons between result folders."""


def __getattr__(name: str):
    # the old module ocrbench.report is ocrbench.report.leaderboard now (issue 23); its names keep working a while
    import warnings

    from . import leaderboard

    if name.startswith("__") or not hasattr(leaderboard, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"ocrbench.report.{name} moved to ocrbench.report.leaderboard.{name}", DeprecationWarning,
                  stacklevel=2)
    return getattr(leaderboard, name)
