import math

import pytest

from ocrbench.harness.metrics import DocumentErrorCounts, ErrorCounts, cer, wer


def test_cer_counts_substitution_insertion_deletion():
    assert cer(["abd"], ["abc"]) == pytest.approx(1 / 3)  # one substitution
    assert cer(["abcx"], ["abc"]) == pytest.approx(1 / 3)  # one insertion
    assert cer(["ab"], ["abc"]) == pytest.approx(1 / 3)  # one deletion
    assert cer(["abc"], ["abc"]) == 0.0


def test_cer_is_corpus_level_not_mean_of_lines():
    hyps, refs = ["", "abcdefghij"], ["a", "abcdefghij"]
    # one edit over 11 reference characters; the mean of per-line rates would be (1 + 0) / 2
    assert cer(hyps, refs) == pytest.approx(1 / 11)


def test_empty_hypothesis_and_empty_reference():
    assert cer([""], ["abcd"]) == 1.0
    assert cer([""], [""]) == 0.0
    assert math.isinf(cer(["xy"], [""]))


def test_wer_over_words_and_whitespace_normalised():
    assert wer(["the cat sat"], ["the cat sat"]) == 0.0
    assert wer(["the bat sat"], ["the cat sat"]) == pytest.approx(1 / 3)
    assert wer(["the  cat   sat "], ["the cat sat"]) == 0.0
    assert wer([""], ["two words"]) == 1.0


def test_case_and_punctuation_are_kept():
    assert cer(["Hello"], ["hello"]) == pytest.approx(1 / 5)
    assert cer(["hello"], ["hello."]) == pytest.approx(1 / 6)


def test_nfc_normalisation_before_scoring():
    decomposed = "Cafe\u0301"  # e + combining acute
    assert cer([decomposed], ["Caf\u00e9"]) == 0.0


def test_counts_accumulate_across_batches():
    counts = ErrorCounts().update(["ab"], ["ac"]).update(["xyz"], ["xyz"])
    assert (counts.char_edits, counts.chars, counts.lines) == (1, 5, 2)
    assert counts.cer == pytest.approx(0.2)


def test_document_counts_sum_to_the_corpus_total():
    hyps, refs = ["ab", "xyz", "the cat", ""], ["ac", "xyz", "the bat", "gone"]
    counts = DocumentErrorCounts().update(hyps, refs, ["p1", "p2", "p1", None])
    assert counts.total == ErrorCounts().update(hyps, refs)  # the same corpus CER as before
    assert counts.as_lists() == {"p1": [2, 9, 2, 3], "p2": [0, 3, 0, 1]}  # the None line: corpus only
