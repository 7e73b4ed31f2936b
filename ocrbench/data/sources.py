"""Where each downloadable collection comes from: the :class:`Recipe` type and the packaged pins.

A recipe is a few facts, never a file list: the GitHub repository and commit, glob patterns of the data files,
their number and size, and one digest (the sha256 of their ``sha256sum`` listing). ``python -m
ocrbench.data.pin`` computes the pin from a copy of the source; :mod:`ocrbench.data.download` fetches and
checks it. The datasets that read these collections (:mod:`ocrbench.datasets.copiste`, ``.memorials``,
``.iam``) take their license and citation from here.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import MISSING, dataclass, fields
from pathlib import PurePosixPath

from ..errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    license: str
    citation: str
    repository: str  # https://github.com/OWNER/NAME
    commit: str  # 40 hex digits: the files never change under a recipe
    data: tuple[str, ...]  # glob patterns of source paths (``*`` stays inside one folder): the files `digest` pins
    digest: str  # sha256 of the data files' sha256sum listing (see listing_text)
    count: int  # data files, and bytes of data and documents: shown before a download, checked against the source
    bytes: int
    documents: tuple[str, ...] = ()  # license / citation files fetched with the data (checked by the source's hash)
    flatten: bool = False  # destination = the file name only (a name met twice is an error)
    rename: tuple[tuple[str, str], ...] = ()  # (source path, destination) pairs that differ from the rule
    postprocess: str | None = None  # name in POSTPROCESS, run on the staged folder before it is installed

    def __post_init__(self):
        where = f"recipe {self.name}"
        if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", self.repository):
            raise DataError(f"{where}: repository must be https://github.com/OWNER/NAME, not {self.repository!r}")
        if not (re.fullmatch(r"[0-9a-f]{40}", self.commit) and re.fullmatch(r"[0-9a-f]{64}", self.digest)):
            raise DataError(f"{where}: commit must be 40 hex digits and digest 64")
        if not self.data or self.count < 1 or self.bytes < 0:
            raise DataError(f"{where}: data needs at least one pattern and count >= 1")
        for dest in [self.dest(p) for p in (*self.data, *self.documents)]:
            if PurePosixPath(dest).is_absolute() or ".." in PurePosixPath(dest).parts:
                raise DataError(f"{where}: destination {dest!r} must stay inside the dataset folder")

    @classmethod
    def from_dict(cls, data: dict, origin: str = "") -> Recipe:
        """A recipe from a plain dict (an entry point's), its lists as tuples."""
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        where = origin or data.get("name", "recipe")
        if missing := sorted(required - set(data)):
            raise DataError(f"recipe {where}: missing field(s) {', '.join(missing)}")
        if unknown := sorted(set(data) - known):
            raise DataError(f"recipe {where}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        as_tuples = {k: tuple(tuple(v) if isinstance(v, list) else v for v in data[k])
                     for k in ("data", "documents", "rename") if k in data}
        return cls(**{**data, **as_tuples})

    @property
    def slug(self) -> str:  # OWNER/NAME
        return self.repository.removeprefix("https://github.com/")

    @property
    def source(self) -> dict:
        return {"repository": self.repository, "commit": self.commit}

    def selects(self, path: str) -> bool:
        return any(glob_match(path, pattern) for pattern in self.data)

    def dest(self, path: str) -> str:
        return dict(self.rename).get(path, PurePosixPath(path).name if self.flatten else path)


def glob_match(path: str, pattern: str) -> bool:
    """``fnmatch`` per path segment: ``data/*/*.jpg`` matches ``data/a/b.jpg`` only (``*`` never crosses a ``/``)."""
    parts, pats = path.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pats))


COPISTE_DUN_JOUR = Recipe(
    name="copiste-dun-jour", license="CC BY 4.0 (LICENSE; credit: Bibliothèque et Archives nationales du Québec "
                                     "(BAnQ), \"Copiste d'un jour\")",
    description="Copiste d'un jour: 333 pages of contemporary handwriting (2024) by volunteer writers of Québec, "
                "French, ALTO v4 from eScriptorium; train/val/test split by document (generated on download)",
    citation="Bibliothèque et Archives nationales du Québec (BAnQ) (2024). Copiste d'un jour [dataset]. "
             "https://github.com/banq-dcn/Copiste-d-un-jour",
    repository="https://github.com/banq-dcn/Copiste-d-un-jour", commit="a3636d2e151b4312973cfb88438a0c4ccd1eb523",
    data=("jpg/*.jpg", "alto/*.xml"), count=666, bytes=301_641_309,
    digest="7801cb1e2d804f8f552de9be829e667305ad6b9f3e7ff32ccc23143ea64c2e3e",
    documents=("LICENSE",), flatten=True, postprocess="document_splits")

STANFORD_MEMORIALS = Recipe(
    name="stanford-memorials", license="CC-BY 4.0 (CITATION.cff: cite the dataset)",
    description="Memorials for Jane Lathrop Stanford: 41 pages of letters and notes of 1905 (English), ALTO v4 "
                "from eScriptorium, line types Handwritten / Typewritten / Print / Signature; evaluation only",
    citation="Guimarães, I., Maurel, P., Ozturk, Y., Chagué, A. (2022). Memorials for Jane Lathrop Stanford "
             "(version 1.0) [dataset]. Zenodo. https://doi.org/10.5281/zenodo.6126625",
    repository="https://github.com/PSL-Chartes-HTR-Students/HN2021-Memorials_Jane_Lathrop_Stanford",
    commit="9266adbc8aea6564b4b8447bcbe205ae1c1e87f2", data=("data/*/*/*.jpg", "data/*/*/*.xml"), count=82,
    bytes=74_666_352, digest="9c82ce2c66ae1d0b12edc1dccf9f3f60aa9b04fa5138cdf093fd8fd1c27260bf",
    documents=("CITATION.CFF",), flatten=True, rename=(("CITATION.CFF", "CITATION.cff"),))

IAM_SPLITS = Recipe(
    name="iam-splits", license="facts about the IAM database, collected by the source repository (no license file)",
    description="Line-ID lists of the IAM split conventions (no IAM data): IAM-B = the Aachen split (6,482 / 976 / "
                "2,915 lines), IAM-C = the large writer-independent task (train / validation 2 / test), IAM-D = "
                "the same with both validation sets",
    citation="Potanin, Shonenkov, Novopoltsev, Dimitrov, Karachev: IAM-Splitting, https://github.com/shonenkov/"
             "IAM-Splitting (IAM-B after T. Bluche, http://www.tbluche.com/resources.html)",
    repository="https://github.com/shonenkov/IAM-Splitting", commit="0ea8c1b95cf9fad55428eb63755af14d4a854cea",
    data=("IAM-[BCD]/train.txt", "IAM-[BCD]/valid.txt", "IAM-[BCD]/test.txt"), count=9, bytes=366_316,
    digest="50c42835b2170140b714c77a1dadba80471d6519fede6fdb904eb37355fbb9d6")

PACKAGED = {r.name: r for r in (COPISTE_DUN_JOUR, STANFORD_MEMORIALS, IAM_SPLITS)}
