"""EMNIST (and MNIST) handwritten glyphs: the glyph pools behind ``emnist-lines``, and the ``emnist`` dataset.

A :class:`GlyphPool` is a set of 28x28 uint8 glyphs (ink bright on black, upright) with class labels. Two
on-disk formats are read, detected from the folder given as ``data.root`` (or ``$OCRBENCH_EMNIST``):

* **torchvision's layout** (``ROOT/EMNIST/raw/emnist-byclass-{train,test}-{images-idx3,labels-idx1}-ubyte``
  and ``ROOT/MNIST/raw/t10k-...``; ``.gz`` files are decompressed into the ocrbench cache, never next to
  the originals). Files are read with torchvision's IDX readers; with ``download=True`` (``ocrbench data check
  emnist --root PATH --download``) torchvision fetches EMNIST into ``ROOT`` first. EMNIST's IDX images are
  stored transposed and are turned upright here; MNIST's md5 checksums (torchvision's) are verified.
* **the WebP-mosaic pool format** (the EMNIST ByClass test split shipped for offline work): a folder with
  ``test.json`` (``mapping``: class id → code point, ``id``: class per glyph, ``bbox``, ``files``, ``width``,
  ``height``) and lossless WebP mosaics ``X_test_A_to_B.webp`` holding glyphs A..B as 28x28 tiles, row-major,
  white ink on black, upright. The known files of the official pool are checked by size when loaded and by
  sha256 in ``ocrbench data check``.

Splits of glyphs (:func:`split_pool`): with the full torchvision EMNIST, ``test`` is EMNIST's test split and
``train``/``val`` a fixed 90/10 partition of its training split; with only a test pool (the WebP format), the
pool is partitioned 80/10/10 per class. Partitions use a fixed seed, independent of ``data.seed``, so no test
glyph is ever a training glyph. They are glyph-disjoint, **not writer-disjoint**: the files carry no writer ids.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..config import DataConfig
from ..data import integrity
from ..data.cache import cache_base
from ..data.charset import IAM_CHARS, Charset
from ..data.images import read_gray
from ..data.registry import register_check, register_dataset
from ..data.samples import LineSample
from ..errors import DataError
from ..records import atomic_write

BYCLASS = string.digits + string.ascii_uppercase + string.ascii_lowercase  # EMNIST ByClass class order
PARTITION_SEED = 20170301  # fixed: glyph partitions must not move with data.seed (EMNIST paper, March 2017)
TILE = 28
GET_EMNIST = ("EMNIST is Cohen et al. 2017's extension of MNIST (NIST SD19): get it with torchvision "
              "(`ocrbench data check emnist --root PATH --download`, needs internet) or from "
              "https://www.nist.gov/itl/products-and-services/emnist-dataset, or use a folder in the WebP-mosaic "
              "pool format (test.json + X_test_*.webp)")

# The official ByClass test pool in the WebP-mosaic format: file -> (bytes, sha256).
KNOWN_POOL_FILES = {
    "X_test_0_to_16128.webp": (3674092, "0e413f4196363ee451fa9589e64adc0c29edb3e3ec0ac8743e715ac0bfe00787"),
    "X_test_16129_to_32257.webp": (3674748, "99dec7b5cb928e057dfe3209687e69bac68a317b2f57390ac32cbcf845c65459"),
    "X_test_32258_to_48386.webp": (3679984, "c52a7f82ba45d288e1ac25b8bab69934691a38499cd8a932c44ca28f005bc246"),
    "X_test_48387_to_64515.webp": (3671906, "4887b7ea0c3af1c35b7882a571d9b6a18a78a4a14b4cafae57acb0befd81af01"),
    "X_test_64516_to_80644.webp": (3682944, "f1751a8de8c810eec3d063bd0bf783b2a527146caad14bac7dff334e1ec5461b"),
    "X_test_80645_to_96773.webp": (3670228, "77c13c0725cf7fd32d696f264e38c7e3ac43bc401bb884df6018e02112d5a072"),
    "X_test_96774_to_112902.webp": (3688334, "42c84e24fbe955643e1eb335a959060c78cca926c2b28e9ceff424ad81c93a95"),
    "X_test_112903_to_116322.webp": (785326, "f653a84706346a63615839e32bfdc9d11d4855b5a5f864c5472722fc96b0e5e6"),
    "test.json": (1690499, "b2d4f5349865e3e808b93c432df28358dea9a46b63e8da1bc9916726d89a56da"),
}
POOL_SIZE = 116_323  # glyphs in EMNIST ByClass test
BYCLASS_TRAIN_SIZE = 697_932


@dataclass(frozen=True)
class GlyphPool:
    images: np.ndarray  # (N, 28, 28) uint8, ink bright, upright
    labels: np.ndarray  # (N,) int64 class ids
    mapping: str  # class id -> character
    source: str  # where it came from, for cache keys and records

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def chars(self) -> str:
        """The classes present, in IAM charset order (so charsets of different datasets line up)."""
        present = {self.mapping[i] for i in np.unique(self.labels)}
        return "".join(c for c in IAM_CHARS if c in present) + "".join(sorted(present - set(IAM_CHARS)))

    def subset(self, index: np.ndarray, name: str) -> GlyphPool:
        return GlyphPool(self.images[index], self.labels[index], self.mapping, f"{self.source}[{name}]")

    def by_char(self) -> dict[str, np.ndarray]:
        """Glyph indices of every character."""
        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(len(self.mapping) + 1))
        return {self.mapping[k]: order[bounds[k]:bounds[k + 1]] for k in range(len(self.mapping))
                if bounds[k + 1] > bounds[k]}


# ---- formats ----------------------------------------------------------------------------------------------
def find_mosaic_folder(root: Path) -> Path | None:
    for folder in (root, root / "byclass-test", root / "emnist" / "byclass-test"):
        if (folder / "test.json").is_file():
            return folder
    return None


def detect_format(root: str | Path) -> str | None:
    """``"mosaic"``, ``"emnist"`` (torchvision EMNIST), ``"mnist"`` (torchvision MNIST) or None."""
    root = Path(root)
    if find_mosaic_folder(root):
        return "mosaic"
    for name in ("EMNIST", "MNIST"):
        raw = root / name / "raw"
        if raw.is_dir() and any(raw.glob("*-ubyte*")):
            return name.lower()
    return None


def _mosaic_range(name: str) -> tuple[int, int]:
    m = re.fullmatch(r"X_\w+?_(\d+)_to_(\d+)\.webp", name)
    if not m:
        raise DataError(f"mosaic file name {name!r} does not look like X_<split>_<first>_to_<last>.webp")
    return int(m.group(1)), int(m.group(2))


def is_official_pool(files: list[str]) -> bool:
    """Whether a pool description lists exactly the mosaics of the official ByClass test pool."""
    return sorted(files) == sorted(n for n in KNOWN_POOL_FILES if n.endswith(".webp"))


def load_mosaic_pool(folder: str | Path) -> GlyphPool:
    """A pool in the WebP-mosaic format (see the module docstring); decoded once per process."""
    return _load_mosaic_pool(str(Path(folder).resolve()), integrity.files_digest([Path(folder) / "test.json"]))


@lru_cache(maxsize=2)
def _load_mosaic_pool(folder: str, digest: str) -> GlyphPool:
    # ``digest`` (test.json's size and mtime) keys the cache, so a replaced pool is read again.
    folder = Path(folder)
    meta_path = folder / "test.json"
    try:
        meta = json.loads(meta_path.read_text())
        mapping = "".join(chr(c) for c in meta["mapping"])
        labels = np.asarray(meta["id"], dtype=np.int64)
        files, w, h = meta["files"], int(meta["width"]), int(meta["height"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{meta_path} is not a valid pool description ({type(e).__name__}: {e})") from None
    if is_official_pool(files):  # cheap size checks on every load; checksums in `ocrbench data check`
        for name, (size, _) in KNOWN_POOL_FILES.items():
            if problem := integrity.check_known_file(folder / name, size):
                raise DataError(f"{folder / name}: {problem}. {GET_EMNIST}")
    images = np.zeros((len(labels), h, w), dtype=np.uint8)
    for name in files:
        first, last = _mosaic_range(name)
        mosaic = read_gray(folder / name)  # RGB with equal channels: gray is exact
        per_row = mosaic.shape[1] // w
        n = min(last, len(labels) - 1) - first + 1
        rows = -(-n // per_row)  # tiles are row-major, per_row to a row
        if n <= 0 or rows > mosaic.shape[0] // h:
            raise DataError(f"{folder / name}: {mosaic.shape} mosaic does not hold glyphs {first}..{last}")
        tiles = mosaic[: rows * h, : per_row * w].reshape(rows, h, per_row, w).transpose(0, 2, 1, 3)
        images[first:first + n] = tiles.reshape(-1, h, w)[:n]
    if labels.size and labels.max() >= len(mapping):
        raise DataError(f"{meta_path}: class ids go up to {labels.max()} but the mapping has {len(mapping)}")
    return GlyphPool(images, labels, mapping, f"mosaic:{folder}:{digest}")


def _idx_file(raw: Path, stem: str, cfg_cache: Path, md5: str | None = None) -> Path:
    """``raw/stem`` as an uncompressed IDX file: decompressed from ``stem.gz`` into the cache if needed."""
    plain, gz = raw / stem, raw / f"{stem}.gz"
    if plain.is_file():
        return plain
    if not gz.is_file():
        raise DataError(f"missing {plain} (or {gz.name}). {GET_EMNIST}")
    if md5 and (problem := integrity.check_known_file(gz, md5=md5)):
        raise DataError(f"{gz}: {problem}")
    out = cfg_cache / "idx" / integrity.files_digest([gz]) / stem
    if not out.is_file():
        try:
            atomic_write(out, lambda tmp: _gunzip(gz, tmp))
        except (OSError, EOFError) as e:
            raise DataError(f"{gz} is not a readable gzip file: {e}") from None
    return out


def _gunzip(gz: Path, dest: Path) -> None:
    with gzip.open(gz, "rb") as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)


def load_torchvision(root: str | Path, name: str = "EMNIST", split: str = "byclass", train: bool = False,
                     download: bool = False, cache: str | Path | None = None) -> GlyphPool:
    """Glyphs of torchvision's (E)MNIST layout under ``root``, read with torchvision's IDX readers.

    Args:
        name: ``"EMNIST"`` or ``"MNIST"`` (digits, the t10k files are enough for ``train=False``).
        split: the EMNIST split (``byclass`` has the 62 classes emnist-lines needs).
        download: let torchvision download EMNIST into ``root`` first (needs internet).
        cache: where ``.gz`` files are decompressed (default: the ocrbench cache).
    """
    from torchvision.datasets import EMNIST, MNIST
    from torchvision.datasets.mnist import read_image_file, read_label_file

    root = Path(root)
    cache = Path(cache) if cache else cache_base(DataConfig())
    if name == "EMNIST":
        if download:
            try:
                EMNIST(str(root), split=split, train=train, download=True)
            except Exception as e:  # network errors, checksum mismatch
                raise DataError(f"torchvision could not download EMNIST into {root}: {e}") from None
        prefix, mapping, md5s, transpose = f"emnist-{split}-{'train' if train else 'test'}", BYCLASS, {}, True
        if split != "byclass":
            mapping = "".join(EMNIST.classes_split_dict[split])
    elif name == "MNIST":
        prefix, mapping, transpose = "train" if train else "t10k", string.digits, False
        md5s = {Path(f).name.removesuffix(".gz"): m for f, m in MNIST.resources}
    else:
        raise DataError(f"torchvision glyph sets are EMNIST or MNIST, got {name!r}")
    raw = root / name / "raw"
    try:
        images_file = _idx_file(raw, f"{prefix}-images-idx3-ubyte", cache, md5s.get(f"{prefix}-images-idx3-ubyte"))
        labels_file = _idx_file(raw, f"{prefix}-labels-idx1-ubyte", cache, md5s.get(f"{prefix}-labels-idx1-ubyte"))
        images, labels = read_image_file(str(images_file)).numpy(), read_label_file(str(labels_file)).numpy()
    except DataError:
        raise
    except Exception as e:  # a truncated or foreign IDX file
        raise DataError(f"cannot read {name} IDX files in {raw}: {type(e).__name__}: {e}") from None
    if transpose:  # EMNIST's IDX images are stored column-major
        images = images.transpose(0, 2, 1)
    if len(images) != len(labels):
        raise DataError(f"{raw}: {len(images)} images but {len(labels)} labels")
    return GlyphPool(np.ascontiguousarray(images), labels.astype(np.int64), mapping,
                     f"torchvision-{name}-{split if name == 'EMNIST' else 'digits'}-{prefix}:{root.resolve()}")


# ---- the pool a dataset uses ------------------------------------------------------------------------------
def resolve_root(cfg: DataConfig, dataset: str) -> Path:
    root = cfg.root or os.environ.get("OCRBENCH_EMNIST")
    if not root:
        raise DataError(f"{dataset} needs EMNIST glyphs: set data.root=PATH (--set data.root=PATH) or "
                        f"$OCRBENCH_EMNIST to a folder in torchvision's layout (PATH/EMNIST/raw) or the WebP-mosaic "
                        f"pool format. {GET_EMNIST}")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{dataset}: folder {root} does not exist. {GET_EMNIST}")
    return root


def partition(labels: np.ndarray, fractions: tuple[float, ...], seed: int = PARTITION_SEED) -> list[np.ndarray]:
    """Disjoint index sets with ``fractions`` of every class each (stratified, fixed seed, sorted)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    bounds = np.cumsum((0.0, *fractions))
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        cuts = np.round(bounds * len(idx)).astype(int)
        for p in range(len(fractions)):
            parts[p].append(idx[cuts[p]:cuts[p + 1]])
    return [np.sort(np.concatenate(p)) for p in parts]


def split_pool(root: Path, split: str, download: bool = False, cache: Path | None = None) -> GlyphPool:
    """The glyphs of ``split`` (see the module docstring for the partition rules)."""
    fmt = detect_format(root)
    if fmt is None and download:
        fmt = "emnist"
    if fmt == "mosaic":
        pool = load_mosaic_pool(find_mosaic_folder(root))
        parts = dict(zip(("train", "val", "test"), partition(pool.labels, (0.8, 0.1, 0.1))))
        return pool.subset(parts[split], split)
    if fmt in ("emnist", "mnist"):
        name = fmt.upper()
        if split == "test":
            return load_torchvision(root, name, train=False, download=download, cache=cache)
        pool = load_torchvision(root, name, train=True, download=download, cache=cache)
        parts = dict(zip(("train", "val"), partition(pool.labels, (0.9, 0.1))))
        return pool.subset(parts[split], split)
    raise DataError(f"{root} holds no EMNIST glyphs in a known format (looked for {root}/test.json, "
                    f"{root}/byclass-test/test.json, {root}/EMNIST/raw and {root}/MNIST/raw). {GET_EMNIST}")


# ---- the `emnist` dataset: single characters ---------------------------------------------------------------
class EmnistChars(Dataset):
    """Single EMNIST characters as (tiny) lines: a 28x28 glyph with 2 px of blank on each side, text = its
    character. Useful to check a model's glyph recognition apart from segmentation."""

    def __init__(self, split: str, cfg: DataConfig):
        cache = cache_base(cfg)
        self.pool = split_pool(resolve_root(cfg, "emnist"), split, bool(cfg.options.get("download")), cache)
        # Every text is one of the pool's classes, so the OOV policy never applies (and "replace" would need
        # a replacement character the glyphs do not have).
        self.charset = Charset(self.pool.chars)
        self.split = split
        self.bad_files: list = []

    def __len__(self) -> int:
        return len(self.pool)

    def __getitem__(self, index: int) -> LineSample:
        glyph = np.pad(self.pool.images[index], ((0, 0), (2, 2)))
        return LineSample(glyph, self.pool.mapping[self.pool.labels[index]], {"index": int(index)})


_EMNIST_CITE = ("Cohen, Afshar, Tapson, van Schaik: EMNIST: an extension of MNIST to handwritten letters, "
                "IJCNN 2017 (arXiv:1702.05373)")
_EMNIST_LICENSE = "NIST Special Database 19 derivative (US government work, no copyright in the US)"


@register_dataset("emnist", description="EMNIST ByClass single handwritten characters (user-supplied: data.root)",
                  license=_EMNIST_LICENSE, citation=_EMNIST_CITE, needs_root=True,
                  sizes="ByClass: 697,932 train + 116,323 test glyphs (torchvision layout; train/val 90/10 of "
                  "train); the WebP test pool alone: 80/10/10 per class",
                  charset="EMNIST ByClass 62 (0-9 A-Z a-z)")
def emnist_chars(split: str, cfg: DataConfig) -> EmnistChars:
    return EmnistChars(split, cfg)


@register_check("emnist")
def check_emnist(root: Path, download: bool = False, **_) -> integrity.CheckReport:
    report = integrity.CheckReport("emnist", root)
    fmt = detect_format(root) if root.exists() else None
    if fmt is None and not download:
        report.fail(f"no EMNIST files found under {root}", GET_EMNIST)
        return report
    if fmt == "mosaic":
        folder = find_mosaic_folder(root)
        try:
            official = is_official_pool(json.loads((folder / "test.json").read_text()).get("files", []))
        except (OSError, ValueError, AttributeError):
            official = False
        for name, (size, sha) in KNOWN_POOL_FILES.items() if official else ():
            if problem := integrity.check_known_file(folder / name, size, sha):
                report.bad(folder / name, problem)
        if report.bad_files:
            report.fail(f"{len(report.bad_files)} file(s) of the EMNIST ByClass test pool are corrupt", GET_EMNIST)
            return report
        report.notes.append("official ByClass test pool: sizes and sha256 checksums verified" if official else
                            "pool in the WebP-mosaic format (not the official file list: no checksums to verify)")
        report.notes.append("WebP-mosaic pool: split 80/10/10 per class into disjoint train/val/test glyphs")
    try:
        for split in ("train", "val", "test"):
            pool = split_pool(root, split, download=download)
            report.counts[f"{split} glyphs"] = len(pool)
        report.counts["classes"] = len(pool.chars)
    except DataError as e:
        report.fail(str(e), GET_EMNIST)
    return report
