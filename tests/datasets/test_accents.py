"""Accents composed as pen strokes: every French letter decomposes, marks sit above (cedilla below) the letter."""

from __future__ import annotations

import numpy as np
import pytest

from ocrbench.data.charset import FRENCH_LETTERS
from ocrbench.datasets import _accents as ac
from ocrbench.datasets import _hershey as hershey
from ocrbench.datasets.synth_lines import ASSETS, STROKE_WRITERS


def test_every_french_letter_is_a_base_letter_and_one_accent():
    for ch in FRENCH_LETTERS:
        base, mark = ac.split_accent(ch)
        assert base.isascii() and base.isalpha() and mark in ac.MARKS, ch
    assert ac.split_accent("e") is None and ac.split_accent("ñ") is None  # a tilde is not one of ours


@pytest.mark.parametrize("mark", ac.MARKS)
def test_marks_sit_above_the_top_or_below_the_foot(mark):
    strokes = np.concatenate(ac.mark_strokes(mark, centre=5.0, top=0.0, foot=9.0, xh=9.0))
    if mark == ac.CEDILLA:
        assert strokes[:, 1].min() >= 9.0
    else:
        assert strokes[:, 1].max() < 0.0 and abs(strokes[:, 0].mean() - 5.0) < 2.0


@pytest.mark.parametrize("name", [w.name for w in STROKE_WRITERS])
def test_hershey_fonts_compose_accented_letters(name):
    font = hershey.load_font(ASSETS / "fonts" / f"{name}.jhf")
    for ch in FRENCH_LETTERS:
        base = font[ac.split_accent(ch)[0]]
        assert font[ch].advance == base.advance and len(font[ch].strokes) > (1 if ch in "îï" else len(base.strokes)) - 1
    top_e = np.concatenate(font["e"].strokes)[:, 1].min()
    assert np.concatenate(font["é"].strokes)[:, 1].min() < top_e  # the accent is above the e
    i_dot = np.concatenate(font["i"].strokes)[:, 1].min()
    assert min(s[:, 1].min() for s in font["î"].strokes[:-1]) > i_dot  # î lost the dot of its i
