"""Charset: encode/decode, OOV policies, NFC normalisation."""

from __future__ import annotations

import pytest

from ocrbench.data.charset import IAM_CHARS, Charset, CharsetError, nfc


def test_iam_charset_size_and_blank():
    charset = Charset()
    assert len(charset) == len(IAM_CHARS) == 79
    assert charset.num_classes == 80  # + CTC blank at index 0


@pytest.mark.parametrize("text", ["Hello, world!", "It's 42 (or 43).", IAM_CHARS, " "])
def test_encode_decode_round_trip(text):
    charset = Charset()
    encoded = charset.encode(text)
    assert min(encoded) >= 1 and max(encoded) <= len(charset)
    assert charset.decode(encoded) == text


def test_decode_skips_blank_and_out_of_range():
    charset = Charset("abc")
    assert charset.decode([0, 1, 0, 2, 3, 4, 99]) == "abc"


def test_error_policy_names_every_unknown_character():
    charset = Charset(oov="error")
    with pytest.raises(CharsetError) as info:
        charset.prepare("caf\u00e9 costs \u20ac5 \u00a7")
    message = str(info.value)
    for code in ("U+00E9", "U+20AC", "U+00A7"):
        assert code in message


def test_replace_policy_maps_and_counts():
    charset = Charset(oov="replace")
    out = charset.prepare("\u201cCaf\u00e9\u201d \u2013 \u20ac5 \u20ac6")
    assert out == '"Cafe" - #5 #6'  # curly quotes/dash mapped, accent stripped, unknown -> '#'
    assert charset.stats.replaced["\u20ac"] == 2
    assert charset.stats.total == 6


def test_nfc_composes_and_collapses_whitespace():
    decomposed = "Cafe\u0301  au\tlait\n"
    assert nfc(decomposed) == "Caf\u00e9 au lait"
    assert nfc("Caf\u00e9") == nfc(decomposed.split()[0])


def test_prepare_normalises_before_checking():
    charset = Charset("ab ")
    assert charset.prepare("  a \n b ") == "a b"


def test_encode_rejects_unprepared_text():
    with pytest.raises(CharsetError):
        Charset().encode("na\u00efve")


def test_duplicate_characters_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        Charset("abca")


def test_a_charset_from_training_text_keeps_frequent_characters_and_maps_the_rest():
    from ocrbench.data.charset import REPLACEMENT_CHAR, charset_from_texts, missing_characters

    charset = charset_from_texts(["éte été", "ete te", "ΩÊ"], min_count=2)
    assert charset.chars == " et\u00e9" + REPLACEMENT_CHAR
    r = REPLACEMENT_CHAR
    assert charset.prepare("Êtes Ω") == f"{r}te{r} {r}"  # Ê's base E is not kept either
    assert charset.stats.replaced == {"Ê": 1, "s": 1, "Ω": 1}
    assert missing_characters(charset, ["tea", "aé"]) == {"a": 2}
