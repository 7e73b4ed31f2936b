"""The document bootstrap, the tie rule with two kinds of interval, and Spearman's rho."""

import math

import numpy as np
import pytest

from ocrbench.report.stats import document_interval, spearman, tie_aware_ranks


def documents(n: int, cer: float = 0.2, seed: int = 0) -> dict:
    """``n`` pages of 80-400 characters whose CERs scatter around ``cer`` (pages differ in difficulty)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        chars = int(rng.integers(80, 400))
        errors = int(round(chars * cer * rng.lognormal(0, 0.5)))
        out[f"page{i}"] = [errors, chars, errors // 2, chars // 5]
    return out


def corpus_cer(docs: dict) -> float:
    return sum(d[0] for d in docs.values()) / sum(d[1] for d in docs.values())


def test_the_interval_holds_the_point_estimate_and_narrows_with_more_documents():
    few, many = documents(10), documents(300)
    (lo_few, hi_few), (lo_many, hi_many) = document_interval([few]), document_interval([many])
    assert lo_few <= corpus_cer(few) <= hi_few and lo_many <= corpus_cer(many) <= hi_many
    assert hi_many - lo_many < (hi_few - lo_few) / 2  # about 1 / sqrt(30) as wide; half is a safe bound


def test_the_seeds_share_each_resample_and_are_averaged():
    a, b = documents(40, 0.2, seed=1), documents(40, 0.3, seed=2)
    assert document_interval([a, a]) == document_interval([a])  # the same documents drawn for every seed
    lo, hi = document_interval([a, b])
    assert lo <= (corpus_cer(a) + corpus_cer(b)) / 2 <= hi
    assert document_interval([a]) == document_interval([a])  # fixed seed: the same interval every report


def test_without_documents_there_is_no_interval():
    assert all(math.isnan(v) for v in document_interval([]))
    assert all(math.isnan(v) for v in document_interval([{"p1": [1, 10, 0, 2]}, {"p2": [1, 10, 0, 2]}]))


def test_rows_tie_when_either_their_seed_or_their_document_intervals_overlap():
    # one seed each (points 0.10 and 0.11), but their document intervals overlap: a tie; c is apart on both
    assert tie_aware_ranks([0.10, 0.11, 0.30], [float("nan")] * 3,
                           [(0.08, 0.12), (0.10, 0.13), (0.28, 0.32)]) == [1, 1, 3]
    # seed intervals overlap while the document intervals are apart: still a tie
    assert tie_aware_ranks([0.10, 0.12], [0.05, 0.05], [(0.09, 0.11), (0.115, 0.125)]) == [1, 1]
    # apart on both: ranked; a row without a document interval is judged on its seeds alone
    assert tie_aware_ranks([0.10, 0.20], [0.01, 0.01], [(0.09, 0.11), (0.19, 0.21)]) == [1, 2]
    assert tie_aware_ranks([0.10, 0.20], [0.01, 0.01], [(0.09, 0.11), (float("nan"), float("nan"))]) == [1, 2]


def test_spearman_ranks_with_ties_and_its_interval():
    assert spearman([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])[0] == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1])[0] == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 3, 2])[0] == pytest.approx(0.5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4])[0] == pytest.approx(0.9486833)  # mean ranks for the tie
    rho, lo, hi = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert rho == pytest.approx(0.8) and lo < 0 < rho < hi < 1  # n = 5: the interval spans zero
    assert math.isnan(spearman([1, 2, 3], [1, 3, 2])[1])  # n <= 3: no interval
    assert math.isnan(spearman([1], [1])[0]) and math.isnan(spearman([1, 2], [5, 5])[0])
