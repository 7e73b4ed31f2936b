"""build_assets: the text pipeline on tiny fake exports (cleaning, hash split, determinism, missing sources),
and the committed text files (well-formed, in IAM_CHARS, splits disjoint and where the hash puts them)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from ocrbench.data.charset import FRENCH_LETTERS, IAM_CHARS
from ocrbench.datasets import _build_assets as ba
from ocrbench.errors import DataError, UserError

NOVEL = """PRIDE AND PREJUDICE

By Jane Austen



Chapter 1


It is a truth universally acknowledged, that a single man in possession
of a good fortune, must be in want of a wife.  Mr. Bennet said nothing.

"My dear Mr. Bennet," said his lady to him one day, "have you heard that
Netherfield Park is let at last?"--Mrs. Long says so.

I saw him walking with--Mrs. Long yesterday.

Hello.

[At this point in the first and second editions, Volume 1 ends.]

CHAPTER II

She paid 20 pounds--a great sum--for the _gown_.  It cost her \u00a320 then.
He had declared,* it was thought.

"Myself creating what I saw,"

brought him yet stronger suspicion of there being a something.

                          * * * * *

*Vide a letter from Mr. Richardson, No. 97, Vol. II, Rambler.



THE END

A NOTE ON THE TEXT

Northanger Abbey was written in 1797-98 under a different title.
"""
FILLER = " ".join(f"Sentence number {i} of the fake novel." for i in range(200))
KJV = """
Matthew 1

  1 The book of the generation of Jesus Christ, the son of David, the son of Abraham.
  2 Abraham begat Isaac; and Isaac begat Jacob; and Jacob begat Judas and his brethren;

1 John 1

  1 Jesus wept. And he said unto them, Follow me.
  2 Amen.
  3 The book of the generation of Jesus Christ, the son of David, the son of Abraham.
"""


@pytest.fixture
def exports(tmp_path) -> Path:
    """An export folder in the layout ``export_sources`` writes: two novels, a bible listing, licenses."""
    root = tmp_path / "exports"
    (root / "austen").mkdir(parents=True)
    (root / "austen" / "prideprejudice.txt").write_text(NOVEL, encoding="utf-8")
    (root / "austen" / "emma.txt").write_text(f"EMMA\n\nCHAPTER I\n\n{FILLER}\n\nMr. Bennet said nothing.\n",
                                              encoding="utf-8")
    (root / "kjv.txt").write_text(KJV, encoding="utf-8")
    (root / "licenses").mkdir()
    for package in ba.LICENSED:
        (root / "licenses" / f"{package}.copyright").write_text(f"{package}: public domain\n")
    return root


def _lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()


def _built(out: Path) -> dict[str, list[str]]:
    return {name: _lines(ba.text_file(name, out)) for name in ba.TEXT_CORPORA}


def test_novels_are_cleaned_into_sentences(exports, tmp_path):
    ba.build_text(exports, tmp_path / "out")
    novels = [s for split in ba.SPLIT_PERCENT for s in _built(tmp_path / "out")[ba.split_corpus(split)]]
    assert "It is a truth universally acknowledged, that a single man in possession of a good fortune, must " \
           "be in want of a wife." in novels
    assert "Mr. Bennet said nothing." in novels and novels.count("Mr. Bennet said nothing.") == 1
    assert '"My dear Mr. Bennet," said his lady to him one day, "have you heard that Netherfield Park is let ' \
           'at last?" - Mrs. Long says so.' in novels  # no split after Mr. / --Mrs.
    assert "I saw him walking with - Mrs. Long yesterday." in novels
    assert "She paid 20 pounds - a great sum - for the gown." in novels  # -- is a dash, _italics_ unmarked
    assert "He had declared, it was thought." in novels  # footnote mark dropped
    text = "\n".join(novels)
    for left_out in ("Austen", "PREJUDICE", "Chapter", "CHAPTER", "edition", "Hello", "Vide", "NOTE",
                     "Northanger", "cost her", "brought him", "* *"):
        assert left_out not in text, left_out
    assert len(novels) == 7 + 200


def test_kjv_verses_become_sentences_in_document_order(exports, tmp_path):
    ba.build_text(exports, tmp_path / "out")
    assert _built(tmp_path / "out")[ba.HELD_OUT_SOURCE] == [
        "The book of the generation of Jesus Christ, the son of David, the son of Abraham.",
        "Abraham begat Isaac; and Isaac begat Jacob; and Jacob begat Judas and his brethren;",
        "Jesus wept.", "And he said unto them, Follow me.",
    ]  # verse numbers and headings gone, "Amen." too short, the repeated verse kept once


def test_split_by_hash_is_disjoint_and_stable(exports, tmp_path):
    ba.build_text(exports, tmp_path / "out")
    built = _built(tmp_path / "out")
    splits = {split: set(built[ba.split_corpus(split)]) for split in ba.SPLIT_PERCENT}
    assert all(splits.values())
    assert sum(map(len, splits.values())) == len(set.union(*splits.values()))  # no sentence in two splits
    for split, sentences in splits.items():
        assert all(ba.split_of(s) == split for s in sentences)
        assert built[ba.split_corpus(split)] == sorted(sentences)
    # pinned: a change of the hash would move sentences between train and test of every earlier result
    assert ba.split_of("Sentence number 0 of the fake novel.") == "train"
    assert ba.split_of("Sentence number 3 of the fake novel.") == "test"
    assert ba.split_of("Sentence number 21 of the fake novel.") == "val"
    shares = [ba.split_of(f"line {i}") for i in range(4000)]
    assert 0.87 < shares.count("train") / len(shares) < 0.93


def test_two_builds_are_byte_identical(exports, tmp_path):
    assert ba.main(["--exports", str(exports), "--out", str(tmp_path / "a")]) == 0
    assert ba.main(["--exports", str(exports), "--out", str(tmp_path / "b")]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == len(ba.TEXT_CORPORA) + len(ba.LICENSED)
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert (tmp_path / "a" / "text" / "licenses" / "r-cran-janeaustenr.copyright").is_file()
    assert all(ba.text_file(n, tmp_path / "a" / "text").read_bytes()[4:8] == b"\0\0\0\0" for n in ba.TEXT_CORPORA)


@pytest.mark.parametrize(("remove", "package"), [("kjv.txt", "bible-kjv-text"), ("austen", "r-cran-janeaustenr"),
                                                 ("licenses", "r-cran-janeaustenr")])
def test_missing_source_is_one_line_naming_apt_get(exports, tmp_path, capsys, remove, package):
    target = exports / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert ba.main(["--exports", str(exports), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"apt-get install -y {package}" in err


def test_empty_novel_folder_is_a_data_error(exports):
    for book in (exports / "austen").iterdir():
        book.unlink()
    with pytest.raises(DataError, match="r-cran-janeaustenr"):
        ba.austen_split(exports)


def test_unexpected_line_in_bible_listing_names_file_and_line(exports):
    (exports / "kjv.txt").write_text(KJV + "garbage without a verse number\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"kjv\.txt:12:"):
        ba.kjv_sentences(exports)


def test_missing_package_tool_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dpkg-query, Rscript or bible
    with pytest.raises(UserError, match="apt-get install -y r-cran-janeaustenr") as err:
        ba.export_sources(tmp_path / "exports")
    assert "\n" not in str(err.value)


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs Debian's dpkg-query")
def test_uninstalled_package_names_the_apt_get_command():
    with pytest.raises(UserError, match="`apt-get install -y ocrbench-no-such-package`$"):
        ba.package_version("ocrbench-no-such-package")


def _has_wordfreq() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wordfreq") == "3.1.1"
    except PackageNotFoundError:
        return False


def _installed(package: str) -> bool:
    try:
        ba.package_version(package)
    except UserError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not all(_installed(p) for p in (ba.AUSTEN_PACKAGE, *ba.KJV_PACKAGES)),
                    reason="needs apt-get install -y r-cran-janeaustenr bible-kjv-text bible-kjv")
def test_build_from_the_packages_reproduces_the_committed_files(tmp_path):
    ba.export_sources(tmp_path / "exports")
    ba.build_text(tmp_path / "exports", tmp_path / "text")
    for name in ba.TEXT_CORPORA:
        assert ba.text_file(name, tmp_path / "text").read_bytes() == ba.text_file(name).read_bytes(), name
    for package in ba.LICENSED:
        rel = Path("licenses") / f"{package}.copyright"
        assert (tmp_path / "text" / rel).read_bytes() == (ba.TEXT_DIR / rel).read_bytes()


# ---- the committed files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ba.TEXT_CORPORA)
def test_committed_corpus_is_well_formed(name):
    data = ba.text_file(name).read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0: rebuilding leaves git clean
    lines = _lines(ba.text_file(name))
    assert len(lines) > 1000 and len(set(lines)) == len(lines)
    assert all(line == line.strip() and line and set(line) <= set(IAM_CHARS) for line in lines)


def test_committed_splits_are_disjoint_and_follow_the_hash():
    for split in ba.SPLIT_PERCENT:
        assert all(ba.split_of(s) == split for s in _lines(ba.text_file(ba.split_corpus(split)))), split
    assert {p.name for p in (ba.TEXT_DIR / "licenses").iterdir()} == {f"{p}.copyright" for p in ba.LICENSED} | {
        "wordfreq.license"}


# ---- the French word list (PyPI wordfreq) -----------------------------------------------------------------
def test_french_words_keep_letters_and_elisions_most_frequent_first():
    freqs = {"de": 0.05, "l": 0.02, "été": 0.001, "aujourd'hui": 0.001, "x": 0.01, "à": 0.01, "2024": 0.01,
             "naïve": 1e-6, "ñu": 0.001, "week-end": 1e-5, "rare": 1e-10}
    assert ba.french_word_lines(freqs) == ["de\t50000000", "l'\t20000000", "à\t10000000",
                                           "aujourd'hui\t1000000", "été\t1000000", "week-end\t10000",
                                           "naïve\t1000"]
    assert ba.french_word_lines(freqs, top=2) == ["de\t50000000", "l'\t20000000"]


def test_committed_french_words_are_well_formed():
    assert ba.text_file(ba.FRENCH_WORDS).read_bytes()[4:8] == b"\0\0\0\0"
    rows = [line.split("\t") for line in _lines(ba.text_file(ba.FRENCH_WORDS))]
    counts = [int(c) for _, c in rows]
    assert len(rows) == ba.FRENCH_TOP and counts == sorted(counts, reverse=True) and counts[-1] > 0
    allowed = set(IAM_CHARS) | set(FRENCH_LETTERS)
    assert all(set(w) <= allowed and w == w.lower() for w, _ in rows)
    assert sum(any(c in FRENCH_LETTERS for c in w) for w, _ in rows) > 3000  # accents are common


def test_french_build_without_wordfreq_names_the_pip_command(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "wordfreq", None)  # import fails as if not installed
    with pytest.raises(UserError, match="pip install wordfreq==3.1.1"):
        ba.build_french(tmp_path)


@pytest.mark.skipif(not _has_wordfreq(), reason="needs pip install wordfreq==3.1.1 (maintainer step)")
def test_french_build_reproduces_the_committed_list(tmp_path):
    ba.build_french(tmp_path)
    assert ba.text_file(ba.FRENCH_WORDS, tmp_path).read_bytes() == ba.text_file(ba.FRENCH_WORDS).read_bytes()
