"""Maintainer tool: build the files under ``ocrbench/data/assets/`` from the offline data folder.

    python -m ocrbench.data.build_assets --shared PATH/TO/OFFLINE/DATA   # a folder with text/ and fonts/

Not used at run time: the package reads only what this writes. Outputs are byte-reproducible (gzip mtime 0,
sorted sentences), so re-running it on the same inputs leaves git clean.

Text: Project Gutenberg books → sentences (header/footer stripped, NFC, typographic marks mapped, only
sentences entirely in ``IAM_CHARS``), deduplicated and assigned to train/val/test by a hash of the sentence
(90/5/5), so a test sentence never appears in train. The US inaugural addresses become ``speeches.txt.gz``,
a second text domain held out for language-model evaluation.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import ImageFont

from .charset import IAM_CHARS, TYPOGRAPHIC_EQUIVALENTS, nfc

ASSETS = Path(__file__).parent / "assets"
SPLIT_PERCENT = {"train": 90, "val": 5, "test": 5}
HERSHEY_FONTS = ("cursive", "scripts", "scriptc", "futural", "timesi")
# Fonts tried in order; a font missing any IAM glyph is dropped with a message. Chosen by eye from the 17 at
# hand: Intuitive and Purisa (upright) read as print, femkeklaver is drawn in outline; dkg/dkgIt are left
# out because their built fonts are GPL-3+ without the font exception.
CANDIDATE_FONTS = (
    "Breip.ttf", "ComicNeue-Italic.otf", "DancingScript-Regular.otf", "Delphine.ttf", "Ecolier-court.ttf",
    "KaushanScript-Regular.otf", "Kristi.ttf", "Purisa-Oblique.ttf", "Rufscript010.ttf", "ShadowsIntoLight.ttf",
    "SteveHand.ttf",
)
FONT_LICENSES = {  # font file -> license file(s) in the shared licenses folder
    "Breip.ttf": "fonts-breip.copyright", "ComicNeue-Italic.otf": "fonts-comic-neue.copyright",
    "DancingScript-Regular.otf": "fonts-dancingscript.copyright", "Delphine.ttf": "fonts-sjfonts.copyright",
    "Ecolier-court.ttf": "fonts-ecolier-court.copyright", "Intuitive.ttf": "Intuitive.OFL.txt",
    "KaushanScript-Regular.otf": "fonts-kaushanscript.copyright", "Kristi.ttf": "fonts-kristi.copyright",
    "Purisa.ttf": "fonts-tlwg-purisa-ttf.copyright", "Purisa-Oblique.ttf": "fonts-tlwg-purisa-ttf.copyright",
    "Rufscript010.ttf": "fonts-rufscript.copyright", "ShadowsIntoLight.ttf": "ShadowsIntoLight.OFL.txt",
    "SteveHand.ttf": "fonts-sjfonts.copyright", "dkg.ttf": "fonts-dkg-handwriting.copyright",
    "dkgIt.ttf": "fonts-dkg-handwriting.copyright", "femkeklaver.ttf": "fonts-femkeklaver.copyright",
}
_ABBREVIATIONS = {"Mr", "Mrs", "Dr", "St", "Ms", "Messrs", "Col", "Capt", "Gen", "Rev", "Esq", "Mt", "No", "Vol"}
_TRANSCRIBER_NOTE = re.compile(r"\betext\b|project gutenberg|proofread", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


# ---- text -------------------------------------------------------------------------------------------------
# Last line of the front matter. Besides the small print, the Shakespeare files carry "Executive Director's
# Notes" signed "Executive Director", and Paradise Lost a page on the etext's history before "Book I".
_HEADER_ENDS = (r"\*END\*? ?THE SMALL PRINT", r"\*\*\* START OF", r"^Executive Director\s*$", r"^Book I\s*$")


def strip_gutenberg(text: str) -> str:
    """The book body: after the last header marker, before the first footer marker."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    for i, line in enumerate(lines[: len(lines) // 2]):
        if any(re.search(m, line) for m in _HEADER_ENDS):
            start = i + 1
    for i in range(start, len(lines)):
        if re.match(r"\s*(End of (The |the )?Project Gutenberg|\*\*\* ?END OF|\*+START\*\*THE SMALL PRINT)", lines[i]):
            end = i
            break
    return "\n".join(lines[start:end])


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, each joined into one line."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def split_sentences(paragraph: str) -> list[str]:
    """Split at . ! ? followed by a capital, except after common abbreviations (Mr. Knightley)."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(paragraph):
        words = paragraph[start : m.start()].split()
        if m.group().startswith(".") and words and words[-1].strip("\"'(") in _ABBREVIATIONS:
            continue
        out.append(paragraph[start : m.end()].strip())
        start = m.end()
    out.append(paragraph[start:].strip())
    return [s for s in out if s]


def normalize_sentence(sentence: str) -> str | None:
    """NFC, typographic marks mapped, whitespace collapsed; None if any character stays outside IAM_CHARS."""
    s = sentence.replace("--", " - ").replace("_", "")  # Gutenberg's em dash and _italics_ markers
    s = "".join(TYPOGRAPHIC_EQUIVALENTS.get(c, c) for c in nfc(s))
    s = nfc(s)
    return s if all(c in IAM_CHARS for c in s) else None


def is_useful(sentence: str) -> bool:
    """Drop headings (CHAPTER IV), speaker tags alone (Ham.), other fragments and leftover transcriber notes."""
    letters = [c for c in sentence if c.isalpha()]
    if len(sentence) < 8 or len(sentence.split()) < 2 or not letters or _TRANSCRIBER_NOTE.search(sentence):
        return False
    return sum(c.isupper() for c in letters) / len(letters) < 0.5


def sentences_of(text: str) -> list[str]:
    out = []
    for para in paragraphs(text):
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


def write_lines_gz(path: Path, lines: list[str]) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(("\n".join(lines) + "\n").encode("utf-8"))
    path.write_bytes(buf.getvalue())


def build_text(shared: Path, out: Path) -> dict[str, int]:
    books = sorted((shared / "text" / "gutenberg").glob("*.txt"))
    sentences = set()
    for book in books:
        sentences.update(sentences_of(strip_gutenberg(book.read_text(encoding="latin-1"))))
    by_split: dict[str, list[str]] = {s: [] for s in SPLIT_PERCENT}
    for s in sorted(sentences):
        by_split[split_of(s)].append(s)
    out.mkdir(parents=True, exist_ok=True)
    for split, lines in by_split.items():
        write_lines_gz(out / f"gutenberg-{split}.txt.gz", lines)
    speeches = build_speeches(shared / "text" / "speeches" / "nltk_inaugural.zip")
    write_lines_gz(out / "speeches.txt.gz", speeches)
    return {**{k: len(v) for k, v in by_split.items()}, "speeches": len(speeches)}


def build_speeches(zip_path: Path) -> list[str]:
    """Sentences of the inaugural addresses, in document order, deduplicated (a held-out LM domain)."""
    seen, out = set(), []
    with zipfile.ZipFile(zip_path) as zf:
        for name in sorted(n for n in zf.namelist() if n.endswith(".txt")):
            for s in sentences_of(zf.read(name).decode("latin-1")):
                if s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


# ---- fonts ------------------------------------------------------------------------------------------------
def missing_glyphs(font_path: Path, chars: str = IAM_CHARS) -> list[str]:
    """Characters the font draws as its .notdef box (or not at all)."""
    font = ImageFont.truetype(str(font_path), 48)
    notdef = _glyph_bitmap(font, "\ue000")
    missing = []
    for ch in chars.replace(" ", ""):
        bitmap = _glyph_bitmap(font, ch)
        if bitmap is None or (notdef is not None and bitmap.shape == notdef.shape and np.array_equal(bitmap, notdef)):
            missing.append(ch)
    return missing


def _glyph_bitmap(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray | None:
    mask = font.getmask(ch)
    if mask.size[0] == 0 or mask.size[1] == 0:
        return None
    arr = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])
    return arr if arr.any() else None


def copy_fonts(shared: Path, out: Path) -> list[str]:
    src, lic_out = shared / "fonts", out / "licenses"
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True, help="the offline data folder (has text/, fonts/); explicit, never guessed")
    parser.add_argument("--out", type=Path, default=ASSETS)
    args = parser.parse_args(argv)
    counts = build_text(args.shared, args.out / "text")
    print("sentences:", counts)
    kept = copy_fonts(args.shared, args.out / "fonts")
    print(f"fonts kept ({len(kept)}):", ", ".join(kept))


if __name__ == "__main__":
    main()
