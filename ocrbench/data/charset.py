"""The character set every dataset and model shares, and the text normalisation used before scoring.

Index 0 is reserved for the CTC blank (also the padding value of target tensors); characters are 1..N.
Sequence models that need start/end tokens append their own after ``len(charset)``.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field

# IAM's character set (79 symbols: space, 25 punctuation marks, digits, letters), the usual HTR target alphabet.
IAM_CHARS = " !\"#&'()*+,-./0123456789:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# French letters beyond IAM's: synth-lines' French lines write them (option ``french``); every one decomposes
# (NFD) into an ASCII letter and one accent, so writers without the glyph compose it (``datasets/_accents.py``).
FRENCH_LETTERS = "ÀÂÇÈÉÊÎÔàâäçèéêëîïôöùûü"

# Typographic variants that mean the same as an in-charset character. Applied by ``normalize_text``
# only when the caller asks (``OOVPolicy.REPLACE``), and counted, so nothing changes silently.
TYPOGRAPHIC_EQUIVALENTS = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
    "\u2026": "...", "\u00a0": " ", "`": "'", "_": "-", "[": "(", "]": ")", "{": "(", "}": ")",
}


# What a charset built from data maps its rare characters to when no base character fits (a class of its own,
# so a rare character costs one substitution, never a silent deletion): U+FFFD, Unicode's replacement character.
REPLACEMENT_CHAR = "\ufffd"


class CharsetError(ValueError):
    """Text holds characters outside the charset and the policy is 'error'."""


def nfc(text: str) -> str:
    """Unicode NFC plus collapsed whitespace: the only normalisation applied before scoring."""
    return " ".join(unicodedata.normalize("NFC", text).split())


@dataclass
class OOVStats:
    """Counts of out-of-charset characters met under the 'replace' policy (reported with results)."""

    replaced: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.replaced.values())


class Charset:
    """An ordered alphabet with encode/decode and an explicit out-of-vocabulary policy.

    Args:
        chars: the characters, in index order (index i+1 for chars[i]).
        oov: ``"error"`` raises :class:`CharsetError` naming the unknown characters;
            ``"replace"`` maps typographic variants and accents to their base character when that is in the
            charset, every other unknown to ``replacement``, and counts each in ``self.stats``.
    """

    def __init__(self, chars: str = IAM_CHARS, oov: str = "error", replacement: str = "#"):
        if len(set(chars)) != len(chars):
            dupes = sorted(c for c, n in Counter(chars).items() if n > 1)
            raise ValueError(f"charset has duplicate characters: {dupes}")
        if oov not in ("error", "replace"):
            raise ValueError(f"oov policy must be 'error' or 'replace', got {oov!r}")
        if oov == "replace" and replacement not in chars:
            raise ValueError(f"replacement {replacement!r} is not in the charset")
        self.chars = chars
        self.oov = oov
        self.replacement = replacement
        self.stats = OOVStats()
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and self.chars == other.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Charset({len(self)} chars, oov={self.oov!r})"

    @property
    def num_classes(self) -> int:
        """Output classes of a CTC head: the characters plus the blank at index 0."""
        return len(self.chars) + 1

    def unknown_chars(self, text: str) -> list[str]:
        return sorted({c for c in text if c not in self._index})

    def prepare(self, text: str) -> str:
        """NFC-normalise ``text`` and apply the OOV policy; the result contains only charset characters."""
        text = nfc(text)
        unknown = self.unknown_chars(text)
        if not unknown:
            return text
        if self.oov == "error":
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown)
            raise CharsetError(f"text has characters outside the charset: {shown} in {text[:60]!r}")
        return "".join(self._replace(c) for c in text)

    def _replace(self, char: str) -> str:
        if char in self._index:
            return char
        self.stats.replaced[char] += 1
        mapped = TYPOGRAPHIC_EQUIVALENTS.get(char)
        if mapped is None:
            base = unicodedata.normalize("NFKD", char)[:1]
            mapped = base if base in self._index else self.replacement
        return mapped if all(c in self._index for c in mapped) else self.replacement

    def encode(self, text: str) -> list[int]:
        """Indices 1..N of an already prepared text (raises on unknown characters)."""
        try:
            return [self._index[c] for c in text]
        except KeyError:
            raise CharsetError(f"cannot encode {self.unknown_chars(text)} in {text[:60]!r}") from None

    def encode_known(self, text: str) -> list[int]:
        """Indices 1..N of the characters of ``text`` that the charset holds, the others left out."""
        return [self._index[c] for c in text if c in self._index]

    def decode(self, indices) -> str:
        """Characters for indices 1..N; 0 (blank/padding) and out-of-range indices are skipped."""
        n = len(self.chars)
        return "".join(self.chars[i - 1] for i in indices if 0 < i <= n)


def charset_from_texts(texts, min_count: int) -> Charset:
    """The charset of a collection's training split: every character (after NFC) seen at least ``min_count``
    times, in code-point order, plus :data:`REPLACEMENT_CHAR`. Rarer characters (and any unseen one) follow the
    ``replace`` rule, counted: a typographic variant or an accented letter becomes its base character when that
    is in the charset, anything else the replacement character."""
    if min_count < 1:
        raise ValueError(f"charset min_count must be >= 1, got {min_count}")
    counts = Counter(c for text in texts for c in nfc(text))
    kept = sorted(c for c, n in counts.items() if n >= min_count and c != REPLACEMENT_CHAR)
    return Charset("".join(kept) + REPLACEMENT_CHAR, oov="replace", replacement=REPLACEMENT_CHAR)


def missing_characters(charset: Charset, texts) -> dict[str, int]:
    """Characters of ``texts`` that ``charset`` cannot produce, with their counts (most frequent first): what a
    model trained on one collection cannot read in another."""
    counts = Counter(c for text in texts for c in text if c not in charset.chars)
    return dict(counts.most_common())


def report_overlap(a: Charset, b: Charset) -> dict:
    """Union/intersection of two charsets, for cross-dataset evaluation."""
    sa, sb = set(a.chars), set(b.chars)
    return {
        "union": len(sa | sb), "intersection": len(sa & sb),
        "only_first": "".join(sorted(sa - sb)), "only_second": "".join(sorted(sb - sa)),
    }
