"""Intervals and ranks over seeds, shared by the recognizer and detector leaderboards and the comparisons."""

from __future__ import annotations

import math

import pandas as pd

# two-sided 95% Student t quantiles by degrees of freedom (1..30); beyond 30 the normal 1.96 is within 2%
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t95(dof: int) -> float:
    return T95[dof - 1] if 1 <= dof <= len(T95) else 1.96


def ci_halfwidth(values) -> float:
    """Half-width of the 95% confidence interval of the mean (Student t); NaN for fewer than 2 values."""
    values = [float(v) for v in values]
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return t95(n - 1) * sd / math.sqrt(n)


def tie_aware_ranks(means, halfwidths) -> list[int]:
    """Rank = 1 + the number of rows whose whole interval lies below this row's interval (significantly
    better). Rows whose intervals overlap share a rank; a row without an interval (one seed) is a point."""
    lo = [m - (0 if pd.isna(h) else h) for m, h in zip(means, halfwidths)]
    hi = [m + (0 if pd.isna(h) else h) for m, h in zip(means, halfwidths)]
    return [1 + sum(hi[j] < lo[i] for j in range(len(lo))) for i in range(len(lo))]
