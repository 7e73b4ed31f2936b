"""Text for the character LM: the vendored public-domain sentence lists, cut into line-like pieces.

``austen-train`` is the only corpus the LM is trained on (the same sentences synth-lines draws its training
lines from); ``austen-test`` (the sentences of the recognizers' test lines) and ``kjv-nt`` (a second domain,
the King James New Testament) are held out and only used to measure perplexity. The names are defined once,
in :mod:`ocrbench.datasets._build_assets`, which writes the files.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

import numpy as np

from ..data.charset import Charset
from ..datasets._build_assets import SPLIT_SOURCE, TEXT_CORPORA, split_corpus, text_file
from ..errors import UserError

CORPORA = TEXT_CORPORA
TRAIN_CORPUS = split_corpus("train")


def corpus_path(name: str) -> Path:
    """A vendored corpus by name, or any UTF-8 text file (``.gz`` allowed), one sentence per line."""
    if name in CORPORA:
        return text_file(name)
    path = Path(name)
    if not path.is_file():
        raise UserError(f"no text corpus {name!r}: use one of {', '.join(CORPORA)} or the path of a text file")
    return path


def record_key(corpus: str) -> str:
    """Short name of a corpus in result records: ``austen-test`` -> ``test`` (``lm_bpc_test``), ``kjv-nt`` ->
    ``kjv_nt`` (``lm_ppl_kjv_nt``)."""
    if corpus not in CORPORA:  # a text file: its name without suffixes (".../val.txt" -> "val")
        corpus = Path(corpus).name.split(".")[0]
    return corpus.removeprefix(f"{SPLIT_SOURCE}-").replace("-", "_")


@cache
def _read(path: Path) -> tuple[str, ...]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return tuple(line for line in data.decode("utf-8").splitlines() if line.strip())


@cache
def load_sentences(name: str, chars: str) -> tuple[str, ...]:
    """Sentences of a corpus mapped into the charset: NFC, typographic variants and accents to their base
    character, anything else to ``#`` (the same ``replace`` policy the datasets offer)."""
    charset = Charset(chars, oov="replace", replacement="#" if "#" in chars else chars[0])
    return tuple(charset.prepare(s) for s in _read(corpus_path(name)))


def sample_window(rng: np.random.Generator, words: list[str], max_chars: int, min_chars: int = 3) -> str:
    """A run of whole words from a random position, about as long as a synth-lines line: 30% draw a length in
    ``[min_chars, max_chars]``, the rest in ``[max_chars // 2, max_chars]``."""
    low = min_chars if rng.random() < 0.3 else max(min_chars, max_chars // 2)
    target = int(rng.integers(low, max_chars + 1))
    start = int(rng.integers(len(words)))
    line = words[start][:max_chars]
    for word in words[start + 1:]:
        if len(line) + 1 + len(word) > target:
            break
        line += " " + word
    return line


def wrap_lines(sentences, max_chars: int) -> list[str]:
    """Every sentence wrapped into lines of at most ``max_chars`` (whole words; longer words are cut):
    deterministic held-out text shaped like the lines a recognizer reads."""
    lines = []
    for sentence in sentences:
        line = ""
        for word in sentence.split():
            while len(word) > max_chars:
                if line:
                    lines.append(line)
                    line = ""
                lines.append(word[:max_chars])
                word = word[max_chars:]
            if line and len(line) + 1 + len(word) > max_chars:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        if line:
            lines.append(line)
    return lines


class LineSampler:
    """Random training lines (word windows) from a sentence list, reproducible from ``seed``."""

    def __init__(self, sentences, max_chars: int, seed: int):
        self.sentences = [s.split() for s in sentences if s.split()]
        self.max_chars = max_chars
        self.rng = np.random.default_rng([seed, 104729])

    def batch(self, n: int) -> list[str]:
        idx = self.rng.integers(len(self.sentences), size=n)
        return [sample_window(self.rng, self.sentences[i], self.max_chars) for i in idx]
