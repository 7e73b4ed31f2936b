"""synth-lines: determinism, split hygiene, charset, shapes and the on-disk cache (tiny sizes, CPU)."""

from __future__ import annotations

import gzip
from dataclasses import replace

import numpy as np
import pytest

from ocrbench.config import DataConfig
from ocrbench.data.charset import FRENCH_LETTERS, IAM_CHARS, Charset
from ocrbench.datasets import create_dataset, list_datasets
from ocrbench.datasets import synth_lines as sl
from ocrbench.errors import UserError


@pytest.fixture
def cfg(tmp_path) -> DataConfig:
    return DataConfig(train_size=8, val_size=4, test_size=6, cache_dir=str(tmp_path))


def _images(ds) -> list[bytes]:
    return [ds[i].image.tobytes() for i in range(len(ds))]


def test_registered_and_sized(cfg):
    assert "synth-lines" in list_datasets()
    ds = create_dataset("synth-lines", "val", cfg)
    assert isinstance(ds, sl.SynthLines) and len(ds) == cfg.val_size


def test_render_line_is_pure():
    opts = sl.parse_options({})
    a, b = (sl.render_line("train", 3, 0, 64, opts) for _ in range(2))
    assert a[0].tobytes() == b[0].tobytes() and a[1:] == b[1:]


def test_fresh_instances_and_cache_reload_identical(cfg, tmp_path):
    first = sl.SynthLines("train", cfg)
    reloaded = sl.SynthLines("train", cfg)  # reads the cache the first one wrote
    elsewhere = sl.SynthLines("train", replace(cfg, cache_dir=str(tmp_path / "other")))
    assert _images(first) == _images(reloaded) == _images(elsewhere)
    assert [first[i].text for i in range(8)] == [elsewhere[i].text for i in range(8)]


def test_seed_and_height_change_the_data(cfg):
    base = sl.SynthLines("test", cfg)
    other_seed = sl.SynthLines("test", replace(cfg, seed=1))
    assert _images(base) != _images(other_seed)
    assert base.cache_path != other_seed.cache_path


@pytest.mark.parametrize("height", [32, 64])
def test_images_are_uint8_of_config_height(cfg, height):
    ds = sl.SynthLines("val", replace(cfg, height=height))
    for i in range(len(ds)):
        image = ds[i].image
        assert image.dtype == np.uint8 and image.ndim == 2 and image.shape[0] == height and image.shape[1] > 0
        assert image.max() > 128  # bright ink on dark paper


def test_texts_in_charset_and_length_bounds(cfg):
    ds = sl.SynthLines("train", replace(cfg, options={"min_chars": 5, "max_chars": 20}))
    charset = Charset(IAM_CHARS, oov="error")
    for i in range(len(ds)):
        text = ds[i].text
        assert charset.prepare(text) == text and 5 <= len(text) <= 20


def test_split_sentences_disjoint():
    splits = {s: set(sl.load_sentences(s)) for s in ("train", "val", "test")}
    assert all(splits.values())
    assert not splits["train"] & splits["test"]
    assert not splits["train"] & splits["val"]
    assert not splits["val"] & splits["test"]


def test_splits_read_the_austen_text_and_the_version_follows_it(cfg, tmp_path, monkeypatch):
    from ocrbench.datasets._build_assets import split_corpus, text_file

    assert sl.load_sentences("val") == tuple(gzip.decompress(text_file("austen-val").read_bytes()).decode().splitlines())
    before = sl.SynthLines("val", cfg).version
    other = tmp_path / "other-val.txt.gz"
    other.write_bytes(gzip.compress(b"A different sentence entirely.\n", mtime=0))
    monkeypatch.setattr(sl, "text_file", lambda corpus: other if corpus == split_corpus("val") else text_file(corpus))
    sl.assets_digest.cache_clear()
    try:
        assert sl.SynthLines("val", cfg).version != before  # new text, new data version (and cache key)
    finally:
        sl.assets_digest.cache_clear()


def test_lines_come_from_their_split(cfg):
    ds = sl.SynthLines("test", cfg)
    sentences = sl.load_sentences("test")
    for i in range(len(ds)):
        assert any(ds[i].text in s for s in sentences)


def test_worker_count_does_not_change_output():
    opts = sl.parse_options({})
    serial = sl.generate("val", 10, 0, 32, opts, workers=1, progress=False, chunk=3)
    pooled = sl.generate("val", 10, 0, 32, opts, workers=2, progress=False, chunk=3)
    assert [(im.tobytes(), t, w) for im, t, w in serial] == [(im.tobytes(), t, w) for im, t, w in pooled]


def test_cache_file_is_reused(cfg, monkeypatch):
    first = sl.SynthLines("val", cfg)
    first[0]
    assert first.cache_path.exists() and first.cache_path.is_relative_to(cfg.cache_dir)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although the cache exists")

    monkeypatch.setattr(sl, "generate", fail)
    second = sl.SynthLines("val", cfg)
    assert _images(second) == _images(first)


def test_corrupt_cache_is_regenerated_with_warning(cfg):
    ds = sl.SynthLines("val", cfg)
    expected = _images(ds)
    ds.cache_path.write_bytes(b"not an npz file")
    with pytest.warns(UserWarning, match=ds.cache_path.name):
        again = _images(sl.SynthLines("val", cfg))
    assert again == expected
    assert sl.SynthLines("val", cfg).cache_path.stat().st_size > 100


def test_unknown_option_is_a_user_error(cfg):
    with pytest.raises(UserError, match="max_chars"):
        sl.SynthLines("train", replace(cfg, options={"max_char": 10}))


def test_hershey_glyph_line_parsed():
    from ocrbench.datasets._hershey import parse_glyph_line

    glyph = parse_glyph_line("12345  9MWRFRT RRYQZR[SZRY")  # '!' of futural: a bar and a dot
    assert (glyph.left, glyph.right, glyph.advance) == (-5, 5, 10)
    assert [s.tolist() for s in glyph.strokes] == [[[0, -12], [0, 2]], [[0, 7], [-1, 8], [0, 9], [1, 8], [0, 7]]]


def test_contact_sheet_written(cfg, tmp_path):
    from PIL import Image

    from ocrbench.data.preview import write_contact_sheet

    ds = sl.SynthLines("val", cfg)
    path = write_contact_sheet(ds, tmp_path / "sheet.png", n=4, columns=2)
    with Image.open(path) as im:
        assert im.width > max(ds[i].image.shape[1] for i in range(2)) and im.height > 2 * cfg.height


# ---- what a scan adds (options off by default) -------------------------------------------------------------
SCAN_DEFAULTS = {"paper": "grain", "neighbours": 0.0, "pen_scale": 1.0, "word_jitter": 0.0}


def test_scan_options_at_their_defaults_leave_the_v3_data(cfg):
    plain = sl.SynthLines("val", cfg)
    explicit = sl.SynthLines("val", replace(cfg, options=SCAN_DEFAULTS))
    assert explicit.cache_path == plain.cache_path  # same seeds and cache: the committed v3 references hold
    assert _images(explicit) == _images(plain)


def test_scan_paper_is_light_paper_under_bright_ink(cfg):
    scan = sl.SynthLines("val", replace(cfg, options={"paper": "scan"}))
    grain = sl.SynthLines("val", cfg)
    for ds in (scan, grain):
        assert all(ds[i].image.max() > 100 for i in range(len(ds)))  # the ink is still there
    paper = [float(np.median(ds[i].image)) for ds in (scan, grain) for i in range(len(ds))]
    scan_paper, grain_paper = paper[: len(scan)], paper[len(scan) :]
    assert max(scan_paper) < 30 and np.mean(scan_paper) < np.mean(grain_paper)


def test_neighbours_bring_ink_into_the_top_and_bottom_rows(cfg):
    neighbours = sl.SynthLines("train", replace(cfg, options={"neighbours": 1.0}))
    edges = [np.r_[neighbours[i].image[:3], neighbours[i].image[-3:]].max() for i in range(len(neighbours))]
    clean_edges = [np.r_[neighbours._clean(i)[:3], neighbours._clean(i)[-3:]].max() for i in range(len(neighbours))]
    # the clean lines keep margins (some blur reaches them); the neighbours' ink fills them on most lines
    assert sum(e > 100 for e in edges) >= sum(e > 100 for e in clean_edges) + len(edges) // 2


def test_thin_pens_draw_less_ink():
    style = sl.sample_style(np.random.default_rng(0), sl.WRITERS[0])
    ink = [np.asarray(sl.render_strokes(np.random.default_rng(1), "minimum", sl.WRITERS[0], replace(style, pen=p), 30),
                      dtype=np.float64).sum() for p in (0.2, 0.1)]
    assert ink[1] < 0.75 * ink[0]


def test_word_ids():
    assert sl.word_ids("ab cd e").tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert sl.word_ids("").tolist() == []


@pytest.mark.parametrize("options, field", [({"paper": "vellum"}, "paper"), ({"neighbours": 1.5}, "neighbours"),
                                            ({"pen_scale": 0.0}, "pen_scale"), ({"word_jitter": -1}, "word_jitter")])
def test_bad_scan_option_is_a_user_error_naming_it(cfg, options, field):
    with pytest.raises(UserError, match=field):
        sl.SynthLines("train", replace(cfg, options=options))


def test_word_jitter_and_scan_render_every_writer():
    options = sl.parse_options({"word_jitter": 1.0, "pen_scale": 0.6, "max_chars": 30})
    for index in range(12):  # stroke and font writers alike
        image, text, _ = sl.render_line("train", index, 0, 32, options)
        assert image.shape[0] == 32 and image.max() > 100 and text


# ---- French lines (option french, off by default) ----------------------------------------------------------
def test_french_off_leaves_the_data_and_the_charset_as_they_were(cfg):
    plain = sl.SynthLines("val", cfg)
    explicit = sl.SynthLines("val", replace(cfg, options={"french": 0.0}))
    assert explicit.cache_path == plain.cache_path and explicit.version == plain.version
    assert explicit.charset is None and _images(explicit) == _images(plain)


def test_french_lines_write_accents_in_the_extended_charset(cfg):
    ds = sl.SynthLines("train", replace(cfg, train_size=40, options={"french": 1.0, "max_chars": 60}))
    assert ds.charset.chars == IAM_CHARS + FRENCH_LETTERS
    texts = [ds[i].text for i in range(len(ds))]
    assert all(set(t) <= set(ds.charset.chars) and 3 <= len(t) <= 60 for t in texts)
    assert sum(any(c in FRENCH_LETTERS for c in t) for t in texts) >= len(texts) // 3  # about half in real French
    assert all(t[0].isupper() and not t.endswith("'") for t in texts)
    assert ds.version != sl.SynthLines("train", cfg).version  # the word list is part of what it is drawn from


def test_french_share_is_the_share_of_french_lines():
    options = sl.parse_options({"french": 0.5})
    texts = [sl.render_line("train", i, 0, 32, options)[1] for i in range(30)]
    english = set(sl.load_sentences("train")[0].split())  # a cheap proxy: Austen's lines never hold an accent
    assert english and 5 <= sum(any(c in FRENCH_LETTERS for c in t) for t in texts) <= 25


def test_french_words_are_drawn_by_frequency():
    words, cumulative = sl.load_french_words()
    assert words[:3] == ("de", "la", "le") and np.all(np.diff(cumulative) >= 0) and cumulative[-1] == pytest.approx(1)
    line = " ".join(sl.french_line(np.random.default_rng(0), 40, 80) for _ in range(20))
    assert line.count(" de ") >= 5  # the most frequent word is frequent


def test_elisions_join_a_word_that_starts_with_a_vowel():
    lines = [sl.french_line(np.random.default_rng(i), 20, 80) for i in range(200)]
    joined = [w for line in lines for w in line.split() if "'" in w[:-1]]
    assert joined and all(w.split("'", 1)[1][:1].lower() in sl.ELISION_NEXT for w in joined if len(w.split("'")[0]) <= 2)


@pytest.mark.parametrize("writer", sl.WRITERS, ids=lambda w: w.name)
def test_every_writer_writes_every_french_letter(writer):
    """Hershey fonts and Rufscript have no accented glyphs: they compose them, so no writer fails on French."""
    style = sl.sample_style(np.random.default_rng(0), writer)
    render = sl.render_strokes if writer.kind == "stroke" else sl.render_font
    image = np.asarray(render(np.random.default_rng(1), f"a{FRENCH_LETTERS}a", writer, style, 30))
    assert image.max() > 100 and image.shape[1] > 200


@pytest.mark.parametrize("name", [w.name for w in sl.FONT_WRITERS])
def test_font_glyphs_of_accented_letters_reach_above_their_base(name):
    for base, accented in (("e", "é"), ("a", "à"), ("E", "É"), ("o", "ô")):
        (_, _, top_base), (_, _, top_accented) = (sl._glyph(name, 40, ch, 0) for ch in (base, accented))
        assert top_accented < top_base, (name, accented)
    (cedilla, _, top_c), (plain, _, top_plain) = (sl._glyph(name, 40, ch, 0) for ch in ("ç", "c"))
    assert top_c + cedilla.height > top_plain + plain.height  # below the foot


def test_bad_french_share_is_a_user_error_naming_it(cfg):
    with pytest.raises(UserError, match="french"):
        sl.SynthLines("train", replace(cfg, options={"french": 1.5}))
