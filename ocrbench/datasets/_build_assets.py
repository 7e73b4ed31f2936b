"""Maintainer tool: build the text files under ``ocrbench/datasets/assets/text/`` from Debian packages.

    apt-get install -y r-cran-janeaustenr bible-kjv-text bible-kjv
    python -m ocrbench.datasets._build_assets                      # text from the installed packages
    python -m ocrbench.datasets._build_assets --fonts-from DIR     # also re-copy the fonts from an offline folder
    pip install wordfreq==3.1.1 && python -m ocrbench.datasets._build_assets --french   # the French word list

Not used at run time, except for the corpus names below (the one place they are spelled): the package reads
only what this writes. Outputs are byte-reproducible (gzip mtime 0, sorted or document-ordered sentences), so
re-running it with the same package versions leaves git clean.

Two steps. **Export** (needs the packages): Jane Austen's six novels out of janeaustenr's R data (``Rscript``),
the King James Bible out of the BRS text through its reader (``bible``), and each package's Debian copyright
file, into a folder::

    austen/<book>.txt               janeaustenr's lines of one novel, UTF-8
    kjv.txt                         ``bible -l10000 mat1:1-rev22:21``: "Book N" chapter headings, "  N text" verses
    licenses/<package>.copyright

**Build** (pure Python, reads only that folder): title pages, end markers, editors' notes and footnotes
stripped; paragraphs split into sentences (not after Mr., Mrs., ...); NFC, typographic marks mapped; only
sentences entirely in ``IAM_CHARS``; fragments dropped. A KJV verse (its number dropped) is a paragraph: a
verse that holds several sentences is split, one that ends mid-sentence (one in five, on ``: ; ,``) stays one
unit, as printed, rather than being glued to the next verse's capitalised first word. The novels' distinct
sentences go to train/val/test by a hash of the sentence (90/5/5), so a test sentence never appears in train;
the KJV New Testament is a second text domain, in document order, held out for language-model evaluation.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..data.charset import FRENCH_LETTERS, IAM_CHARS, TYPOGRAPHIC_EQUIVALENTS, nfc
from ..errors import DataError, UserError

ASSETS = Path(__file__).parent / "assets"
TEXT_DIR = ASSETS / "text"

# ---- corpus names: the only place the built text files are named ------------------------------------------
SPLIT_PERCENT = {"train": 90, "val": 5, "test": 5}
SPLIT_SOURCE = "austen"  # split by sentence hash: synth-lines' text and the LM's training text
HELD_OUT_SOURCE = "kjv-nt"  # a second domain, never trained on: LM perplexity only
FRENCH_WORDS = "fr-words"  # French words by frequency (PyPI wordfreq): synth-lines' French lines


def split_corpus(split: str) -> str:
    """Name of one split of the novels, e.g. ``austen-train``."""
    return f"{SPLIT_SOURCE}-{split}"


TEXT_CORPORA = (*(split_corpus(s) for s in SPLIT_PERCENT), HELD_OUT_SOURCE)


def text_file(corpus: str, text_dir: Path = TEXT_DIR) -> Path:
    return text_dir / f"{corpus}.txt.gz"


# ---- sources: Debian packages ------------------------------------------------------------------------------
AUSTEN_PACKAGE, KJV_PACKAGES = "r-cran-janeaustenr", ("bible-kjv-text", "bible-kjv")  # bible-kjv: the reader
# janeaustenr's data sets, in publication order
AUSTEN_BOOKS = ("sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion")
# The New Testament only: 7,957 verses, about as much held-out text as the LM evaluation needs (the whole
# Bible would be 4x the scoring time of every first LM training and 1.2 MB of gzip in the package).
KJV_RANGE = "mat1:1-rev22:21"
LICENSED = (AUSTEN_PACKAGE, "bible-kjv-text")  # packages whose copyright file travels with the text
_R_EXPORT = """
args <- commandArgs(trailingOnly = TRUE)
for (book in args[-1]) {
  con <- file(file.path(args[1], paste0(book, ".txt")), open = "wb")
  writeLines(enc2utf8(getExportedValue("janeaustenr", book)), con, useBytes = TRUE)
  close(con)
}
"""


def package_version(package: str) -> str:
    """The installed version of a Debian package; a one-line error naming the apt-get command if absent."""
    install = f"apt-get install -y {package}"
    if shutil.which("dpkg-query") is None:
        raise UserError(f"dpkg-query not found: build_assets reads Debian packages; on Debian/Ubuntu run `{install}`")
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                          capture_output=True, text=True, check=False)
    status, _, version = done.stdout.partition("\t")
    if done.returncode != 0 or not status.endswith(" installed"):
        raise UserError(f"Debian package {package} is not installed: run `{install}`")
    return version


def _run(cmd: list[str], what: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise DataError(f"{what}: {cmd[0]} not found on PATH although its package is installed") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise DataError(f"{what} failed ({' '.join(cmd[:2])} ...): {last}")
    return done.stdout


def export_sources(dest: Path, doc_dir: Path = Path("/usr/share/doc")) -> dict[str, str]:
    """Write the raw texts and copyright files of the installed packages to ``dest``; returns their versions."""
    versions = {p: package_version(p) for p in (AUSTEN_PACKAGE, *KJV_PACKAGES)}
    (dest / "austen").mkdir(parents=True, exist_ok=True)
    _run(["Rscript", "--vanilla", "-e", _R_EXPORT, str(dest / "austen"), *AUSTEN_BOOKS], "exporting janeaustenr")
    listing = _run(["bible", "-l10000", KJV_RANGE], "exporting the KJV with bible")
    (dest / "kjv.txt").write_text(listing, encoding="utf-8")
    (dest / "licenses").mkdir(exist_ok=True)
    for package in LICENSED:
        shutil.copyfile(doc_dir / package / "copyright", dest / "licenses" / f"{package}.copyright")
    return versions


# ---- cleaning ---------------------------------------------------------------------------------------------
_ABBREVIATIONS = {"Mr", "Mrs", "Dr", "St", "Ms", "Messrs", "Col", "Capt", "Gen", "Rev", "Esq", "Mt", "No", "Vol"}
_LAST_WORD = re.compile(r"[A-Za-z]+$")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# janeaustenr's novels start with a title page (and Northanger Abbey with the author's advertisement) before
# the first chapter, and end with THE END / FINIS; Northanger Abbey then has a modern publisher's note.
_AUSTEN_HEADING = re.compile(r"^\s*(CHAPTER|Chapter|VOLUME|Volume)\s+([IVXLC]+|\d+)\.?\s*$")
_AUSTEN_END = re.compile(r"^\s*(THE END|FINIS|A NOTE ON THE TEXT)\s*$", re.IGNORECASE)
_FOOTNOTE_MARK = re.compile(r"(?<=\S)\*(?=\s|$)")  # "declared,* it": the footnote itself is dropped
_KJV_HEADING = re.compile(r"^\S.*\s\d+$")  # "Genesis 1", "1 Samuel 3", "Song of Solomon 8"
_KJV_VERSE = re.compile(r"^\s+\d+\s+(\S.*)$")


def austen_body(text: str) -> str:
    """The novel from its first chapter heading to its end marker, headings kept as their own paragraphs."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _AUSTEN_HEADING.match(line)), 0)
    end = next((i for i in range(start, len(lines)) if _AUSTEN_END.match(lines[i])), len(lines))
    return "\n".join(lines[start:end])


def is_editorial(paragraph: str) -> bool:
    """Chapter/volume headings, editors' notes in brackets ("[End volume one of this edition."), footnotes."""
    return bool(_AUSTEN_HEADING.match(paragraph)) or paragraph.startswith(("[", "*"))


def kjv_verses(listing: str, source: str = "kjv.txt") -> list[str]:
    """The verses of a ``bible`` listing in order, verse numbers and chapter headings dropped."""
    verses = []
    for number, line in enumerate(listing.splitlines(), 1):
        verse = _KJV_VERSE.match(line)
        if verse:
            verses.append(" ".join(verse.group(1).split()))
        elif line.strip() and not _KJV_HEADING.match(line):
            raise DataError(f"{source}:{number}: neither a chapter heading nor a verse: {line[:60]!r}")
    return verses


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, each joined into one line."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def split_sentences(paragraph: str) -> list[str]:
    """Split at . ! ? followed by a capital, except after common abbreviations (Mr. Knightley, "--Mrs. Elton")."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(paragraph):
        word = _LAST_WORD.search(paragraph, start, m.start())
        if m.group().startswith(".") and word and word.group() in _ABBREVIATIONS:
            continue
        out.append(paragraph[start : m.end()].strip())
        start = m.end()
    out.append(paragraph[start:].strip())
    return [s for s in out if s]


def normalize_sentence(sentence: str) -> str | None:
    """NFC, typographic marks mapped, whitespace collapsed; None if any character stays outside IAM_CHARS."""
    s = sentence.replace("--", " - ").replace("_", "")  # the e-texts' em dash and _italics_ markers
    s = _FOOTNOTE_MARK.sub("", s)
    s = "".join(TYPOGRAPHIC_EQUIVALENTS.get(c, c) for c in nfc(s))
    s = nfc(" ".join(s.split()))
    return s if all(c in IAM_CHARS for c in s) else None


def is_useful(sentence: str) -> bool:
    """Drop headings (CHAPTER IV), one-word and very short fragments, pieces that start in lower case (the rest
    of a sentence interrupted by quoted verse), and lines mostly in capitals."""
    letters = [c for c in sentence if c.isalpha()]
    if len(sentence) < 8 or len(sentence.split()) < 2 or not letters or letters[0].islower():
        return False
    return sum(c.isupper() for c in letters) / len(letters) < 0.5


def sentences_of(paras: list[str]) -> list[str]:
    """Usable, normalised sentences of the paragraphs, in order (duplicates kept)."""
    out = []
    for para in paras:
        if is_editorial(para):
            continue
        for raw in split_sentences(para):
            s = normalize_sentence(raw)
            if s and is_useful(s):
                out.append(s)
    return out


def split_of(sentence: str) -> str:
    """Stable assignment by hash, so the same sentence lands in the same split on every machine."""
    bucket = int.from_bytes(hashlib.sha1(sentence.encode("utf-8")).digest()[:8], "big") % 100
    edge = 0
    for split, pct in SPLIT_PERCENT.items():
        edge += pct
        if bucket < edge:
            return split
    raise AssertionError("split percentages must sum to 100")


# ---- building ---------------------------------------------------------------------------------------------
def _source_file(path: Path, package: str, pattern: str | None = None) -> Path:
    """``path`` (with a file matching ``pattern`` if given), or a one-line error naming the package to install."""
    if not path.exists() or (pattern and not any(path.glob(pattern))):
        what = f"{path / pattern}" if pattern else str(path)
        raise DataError(f"no source text {what}: run `apt-get install -y {package}`, then "
                        "`python -m ocrbench.datasets._build_assets` (it exports the installed packages first)")
    return path


def austen_split(exports: Path) -> dict[str, list[str]]:
    """The novels' distinct sentences by split, each split sorted."""
    books = sorted(_source_file(exports / "austen", AUSTEN_PACKAGE, "*.txt").glob("*.txt"))
    sentences = set()
    for book in books:
        sentences.update(sentences_of(paragraphs(austen_body(book.read_text(encoding="utf-8")))))
    by_split: dict[str, list[str]] = {s: [] for s in SPLIT_PERCENT}
    for s in sorted(sentences):
        by_split[split_of(s)].append(s)
    return by_split


def kjv_sentences(exports: Path) -> list[str]:
    """The KJV's sentences in document order, each kept at its first occurrence."""
    path = _source_file(exports / "kjv.txt", " ".join(KJV_PACKAGES))
    return list(dict.fromkeys(sentences_of(kjv_verses(path.read_text(encoding="utf-8"), str(path)))))


def write_lines_gz(path: Path, lines: list[str]) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(("\n".join(lines) + "\n").encode("utf-8"))
    path.write_bytes(buf.getvalue())


def build_text(exports: Path, out: Path = TEXT_DIR) -> dict[str, int]:
    """Write every corpus of :data:`TEXT_CORPORA` and the license files to ``out``; returns sentence counts."""
    corpora = {split_corpus(s): lines for s, lines in austen_split(exports).items()}
    corpora[HELD_OUT_SOURCE] = kjv_sentences(exports)
    (out / "licenses").mkdir(parents=True, exist_ok=True)
    for package in LICENSED:
        name = f"{package}.copyright"
        shutil.copyfile(_source_file(exports / "licenses" / name, package), out / "licenses" / name)
    for name, lines in corpora.items():
        write_lines_gz(text_file(name, out), lines)
    return {name: len(lines) for name, lines in corpora.items()}


# ---- French words: PyPI wordfreq -------------------------------------------------------------------------
# wordfreq's word lists are frequencies, not text: no sentence, so no split to leak across (every split draws
# from the same list, see synth_lines.french_line). Its code is Apache-2.0, its data CC BY-SA 4.0: the list
# we derive stays CC BY-SA 4.0, credited in ``text/licenses/wordfreq.license``.
FRENCH_PACKAGE = "wordfreq==3.1.1"
FRENCH_TOP = 20_000  # words: down to about 1 in 10^6 running words, beyond which wordfreq's tail is noisy
PER_BILLION = 1e9
# wordfreq splits elisions off ("l'homme" -> "l", "homme"); they come back as prefixes that glue to the next word
ELIDED = {"c", "d", "j", "l", "m", "n", "qu", "s", "t", "jusqu", "lorsqu", "puisqu", "quoiqu"}
SINGLE_LETTER_WORDS = {"a", "à", "y", "ô"}
_FRENCH_WORD = re.compile(f"[a-z{FRENCH_LETTERS.lower()}]+(?:['-][a-z{FRENCH_LETTERS.lower()}]+)*")


def french_word_lines(freqs: dict[str, float], top: int = FRENCH_TOP) -> list[str]:
    """``word<TAB>occurrences per billion words`` for the ``top`` most frequent usable words, most frequent first
    (ties by word): lowercase letters of IAM_CHARS and FRENCH_LETTERS, inner apostrophes and hyphens; an elided
    article or conjunction (``l``) as its prefix (``l'``)."""
    out: list[tuple[int, str]] = []
    for word, freq in freqs.items():
        if word in ELIDED:
            word = word + "'"
        elif not _FRENCH_WORD.fullmatch(word) or (len(word) == 1 and word not in SINGLE_LETTER_WORDS):
            continue
        count = round(freq * PER_BILLION)
        if count > 0:
            out.append((count, word))
    out.sort(key=lambda cw: (-cw[0], cw[1]))
    return [f"{w}\t{c}" for c, w in out[:top]]


def build_french(out: Path = TEXT_DIR) -> int:
    """Write ``fr-words`` and wordfreq's license from the installed wordfreq; returns the number of words."""
    try:
        import wordfreq
    except ImportError:
        raise UserError(f"wordfreq is not installed: run `pip install {FRENCH_PACKAGE}` (maintainer step only)") from None
    from importlib.metadata import distribution

    dist = distribution("wordfreq")
    if dist.version != FRENCH_PACKAGE.split("==")[1]:
        raise UserError(f"wordfreq {dist.version} is installed; the committed list is from {FRENCH_PACKAGE}")
    lines = french_word_lines(wordfreq.get_frequency_dict("fr", wordlist="large"))
    write_lines_gz(text_file(FRENCH_WORDS, out), lines)
    (out / "licenses").mkdir(parents=True, exist_ok=True)
    (out / "licenses" / "wordfreq.license").write_text(_wordfreq_license(dist), encoding="utf-8")
    return len(lines)


def _wordfreq_license(dist) -> str:
    """wordfreq's LICENSE.txt (code) and its README's License section (the data's CC BY-SA 4.0 and credits)."""
    readme = dist.metadata.get_payload() or ""
    section = readme[readme.find("## License"):].strip() if "## License" in readme else ""
    if not section:
        raise DataError("wordfreq's package description has no '## License' section to credit its data")
    return f"{dist.read_text('LICENSE.txt').strip()}\n\n{section}\n"


# ---- fonts (unchanged since they were chosen; re-copied only with --fonts-from) ---------------------------
HERSHEY_FONTS = ("cursive", "scripts", "scriptc", "futural", "timesi")
# Fonts tried in order; a font missing any IAM glyph is dropped with a message. Chosen by eye from the 17 at
# hand: Intuitive and Purisa (upright) read as print, femkeklaver is drawn in outline; dkg/dkgIt are left
# out because their built fonts are GPL-3+ without the font exception.
CANDIDATE_FONTS = (
    "Breip.ttf", "ComicNeue-Italic.otf", "DancingScript-Regular.otf", "Delphine.ttf", "Ecolier-court.ttf",
    "KaushanScript-Regular.otf", "Kristi.ttf", "Purisa-Oblique.ttf", "Rufscript010.ttf", "ShadowsIntoLight.ttf",
    "SteveHand.ttf",
)
FONT_LICENSES = {  # font file -> license file(s) in the offline folder's fonts/licenses
    "Breip.ttf": "fonts-breip.copyright", "ComicNeue-Italic.otf": "fonts-comic-neue.copyright",
    "DancingScript-Regular.otf": "fonts-dancingscript.copyright", "Delphine.ttf": "fonts-sjfonts.copyright",
    "Ecolier-court.ttf": "fonts-ecolier-court.copyright", "Intuitive.ttf": "Intuitive.OFL.txt",
    "KaushanScript-Regular.otf": "fonts-kaushanscript.copyright", "Kristi.ttf": "fonts-kristi.copyright",
    "Purisa.ttf": "fonts-tlwg-purisa-ttf.copyright", "Purisa-Oblique.ttf": "fonts-tlwg-purisa-ttf.copyright",
    "Rufscript010.ttf": "fonts-rufscript.copyright", "ShadowsIntoLight.ttf": "ShadowsIntoLight.OFL.txt",
    "SteveHand.ttf": "fonts-sjfonts.copyright", "dkg.ttf": "fonts-dkg-handwriting.copyright",
    "dkgIt.ttf": "fonts-dkg-handwriting.copyright", "femkeklaver.ttf": "fonts-femkeklaver.copyright",
}


def missing_glyphs(font_path: Path, chars: str = IAM_CHARS) -> list[str]:
    """Characters the font draws as its .notdef box (or not at all)."""
    import numpy as np
    from PIL import ImageFont

    font = ImageFont.truetype(str(font_path), 48)
    notdef = _glyph_bitmap(font, "\ue000")
    missing = []
    for ch in chars.replace(" ", ""):
        bitmap = _glyph_bitmap(font, ch)
        if bitmap is None or (notdef is not None and bitmap.shape == notdef.shape and np.array_equal(bitmap, notdef)):
            missing.append(ch)
    return missing


def _glyph_bitmap(font, ch: str):
    import numpy as np

    mask = font.getmask(ch)
    if mask.size[0] == 0 or mask.size[1] == 0:
        return None
    arr = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])
    return arr if arr.any() else None


def copy_fonts(offline: Path, out: Path) -> list[str]:
    src, lic_out = offline / "fonts", out / "licenses"
    lic_out.mkdir(parents=True, exist_ok=True)
    kept = []
    for name in CANDIDATE_FONTS:
        missing = missing_glyphs(src / "handwriting" / name)
        if missing:
            print(f"  drop {name}: no glyph for {''.join(missing)!r}")
            continue
        shutil.copyfile(src / "handwriting" / name, out / name)
        shutil.copyfile(src / "licenses" / FONT_LICENSES[name], lic_out / FONT_LICENSES[name])
        kept.append(name)
    for name in HERSHEY_FONTS:
        shutil.copyfile(src / "hershey" / f"{name}.jhf", out / f"{name}.jhf")
    shutil.copyfile(src / "licenses" / "hershey-fonts-data.copyright", lic_out / "hershey-fonts-data.copyright")
    return kept


# ---- command line -----------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> None:
    if args.french:
        print(f"French words: {build_french(args.out / 'text'):,} (from {FRENCH_PACKAGE})")
        return
    if args.exports:
        counts = build_text(args.exports, args.out / "text")
    else:
        with tempfile.TemporaryDirectory(prefix="ocrbench-text-") as tmp:
            versions = export_sources(Path(tmp))
            print("packages:", ", ".join(f"{p} {v}" for p, v in versions.items()))
            counts = build_text(Path(tmp), args.out / "text")
    print("sentences:", ", ".join(f"{name} {n:,}" for name, n in counts.items()))
    if args.fonts_from:
        kept = copy_fonts(args.fonts_from, args.out / "fonts")
        print(f"fonts kept ({len(kept)}):", ", ".join(kept))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocrbench.datasets._build_assets", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help="assets folder to write text/ (and fonts/) into")
    parser.add_argument("--exports", type=Path,
                        help="build from this export folder (austen/, kjv.txt, licenses/) instead of the packages")
    parser.add_argument("--fonts-from", type=Path,
                        help="also re-copy the fonts from this offline folder (has fonts/); default: leave them")
    parser.add_argument("--french", action="store_true",
                        help=f"build only the French word list, from PyPI's {FRENCH_PACKAGE} (pip install it first)")
    args = parser.parse_args(argv)
    try:
        run(args)
    except UserError as e:
        print(f"build_assets: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
