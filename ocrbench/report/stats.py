"""Intervals and ranks, shared by the recognizer and detector leaderboards and the comparisons: over seeds
(Student t), over documents (a bootstrap of whole documents), and the rank agreement of two tracks (Spearman)."""

from __future__ import annotations

import math

import numpy as np
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


def tie_aware_ranks(means, halfwidths, doc_intervals=None) -> list[int]:
    """Rank = 1 + the number of rows significantly better than this one. Row j is significantly better than
    row i only when j's whole seed interval lies below i's AND, where both rows have one, j's whole document
    interval (:func:`document_interval`) lies below i's: rows whose seed intervals overlap, or whose document
    intervals overlap, share a rank. A row without a seed interval (one seed) is a point."""
    seeds = [_interval(m - h, m + h) if pd.notna(h) else (m, m) for m, h in zip(means, halfwidths)]
    docs = [_interval(*d) if d is not None else None for d in (doc_intervals or [None] * len(seeds))]

    def better(j: int, i: int) -> bool:
        if docs[j] is not None and docs[i] is not None and docs[j][1] >= docs[i][0]:
            return False
        return seeds[j][1] < seeds[i][0]

    return [1 + sum(better(j, i) for j in range(len(seeds))) for i in range(len(seeds))]


def _interval(lo, hi) -> tuple[float, float] | None:
    return None if pd.isna(lo) or pd.isna(hi) else (float(lo), float(hi))


# ---------------------------------------------------------------------------------------------- documents

BOOTSTRAP_RESAMPLES = 1000  # percentile ends are stable to ~0.5 percentile point at 1000 (Efron & Tibshirani 1993)
BOOTSTRAP_SEED = 0


def document_interval(per_seed: list[dict], resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95% percentile interval of the corpus CER when the test set's documents are drawn again with
    replacement: the uncertainty from *which pages* were transcribed, which seeds do not show.

    Args:
        per_seed: one ``doc_errors`` dict per seed (document -> [char_errors, ref_chars, word_errors, ref_words]).
    Returns:
        (low, high); NaN, NaN without documents. Each resample uses the same documents for every seed (and, with
        the fixed seed, for every row on the same documents) and takes the mean over seeds of its corpus CER.
    """
    docs = sorted(set.intersection(*(set(d) for d in per_seed))) if per_seed else []
    if not docs:
        return float("nan"), float("nan")
    edits = np.array([[d[k][0] for k in docs] for d in per_seed], dtype=np.float64)  # (seeds, documents)
    chars = np.array([[d[k][1] for k in docs] for d in per_seed], dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(docs), np.full(len(docs), 1 / len(docs)), size=resamples)  # times each is drawn
    total = draws @ chars.T  # (resamples, seeds)
    cer = np.divide(draws @ edits.T, total, out=np.full_like(total, np.nan), where=total > 0).mean(axis=1)
    low, high = np.nanpercentile(cer, [2.5, 97.5])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------- rank agreement

def spearman(a, b) -> tuple[float, float, float]:
    """Spearman's rho of two paired sequences (ties get their mean rank) and its approximate 95% interval
    (Fisher z with Fieller, Hartley & Pearson's 1957 variance 1.06 / (n - 3)); NaN interval for n <= 3 or
    |rho| = 1, NaN rho for fewer than 2 pairs or a constant side."""
    ra, rb = pd.Series(list(a), dtype=float).rank(), pd.Series(list(b), dtype=float).rank()
    n = len(ra)
    if n < 2 or ra.nunique() < 2 or rb.nunique() < 2:
        return float("nan"), float("nan"), float("nan")
    rho = float(np.corrcoef(ra, rb)[0, 1])
    if n <= 3 or abs(rho) >= 1 - 1e-12:
        return rho, float("nan"), float("nan")
    z, half = math.atanh(rho), 1.96 * math.sqrt(1.06 / (n - 3))
    return rho, math.tanh(z - half), math.tanh(z + half)
