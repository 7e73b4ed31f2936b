"""Integrity of user-supplied data: file checks, ``--skip-bad`` counting, ``ocrbench data check``, line caches.

Rules every loader of real data follows:

* known files are checked (sizes at load time, checksums in ``ocrbench data check``), and a corrupt or
  unreadable file is a :class:`~ocrbench.errors.DataError` naming the file;
* with ``data.skip_bad`` (``--skip-bad``) an unreadable line image is skipped instead, and **counted**:
  ``dataset.integrity`` (``{"bad_files": n, "bad_examples": [...]}``, see :func:`integrity_summary`) goes
  into the result row; nothing is dropped silently;
* decoded lines are resized to ``cfg.height`` once and cached (:class:`CachedLines`), so later epochs and
  runs read one ``.npz`` instead of thousands of scans.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..config import DataConfig
from ..errors import DataError
from ..records import stable_digest
from .cache import cache_home, save_npz
from .samples import MAX_LINE_ASPECT, MAX_LINE_CHARS, LineSample, line_problem, resize_to_height

SKIP_HINT = "use --skip-bad (data.skip_bad=true) to skip unreadable files; they are counted in the results"


# ---- files ------------------------------------------------------------------------------------------------
def file_hash(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_known_file(path: str | Path, size: int | None = None, sha256: str | None = None,
                     md5: str | None = None) -> str | None:
    """What is wrong with ``path`` (missing, wrong size, wrong checksum), or None when it matches."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"size {actual} bytes, expected {size} (truncated or a different version)"
    if sha256 and file_hash(path, "sha256") != sha256:
        return "sha256 checksum does not match (corrupt or a different version)"
    if md5 and file_hash(path, "md5") != md5:
        return "md5 checksum does not match (corrupt or a different version)"
    return None


def check_image(path: str | Path) -> str | None:
    """Why ``path`` is not a readable image, or None. Decodes the pixels (a truncated file fails here)."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty file"
    try:
        with Image.open(path) as im:
            im.load()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        return f"unreadable image ({type(e).__name__}: {e})"
    return None


def files_digest(paths: Iterable[str | Path]) -> str:
    """Cheap identity of a set of files (path, size, mtime) for cache keys: an edited file changes it."""
    h = hashlib.sha1()
    for p in paths:
        p = Path(p)
        st = p.stat() if p.exists() else None
        h.update(f"{p}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n".encode())
    return h.hexdigest()[:16]


def stable_hash(obj: Any) -> str:
    """Short content hash of plain data (line cache file names): sha1 of its canonical JSON, 16 hex digits."""
    return stable_digest(obj, "sha1").hex()[:16]


def cache_base(cfg: DataConfig) -> Path:
    return cache_home(cfg.cache_dir)


# ---- bad files --------------------------------------------------------------------------------------------
@dataclass
class BadFile:
    path: str
    reason: str
    item: str = ""  # the line id(s) it held

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (f" (line {self.item})" if self.item else "")


def integrity_summary(dataset) -> dict:
    """The fields a result row gets about skipped or changed data: ``bad_files`` (a count) and a few examples,
    and ``oov_replaced``, the characters outside the charset that an ``oov: replace`` policy mapped (counts)."""
    bad = getattr(dataset, "bad_files", None) or []
    charset = getattr(dataset, "charset", None)
    replaced = dict(charset.stats.replaced.most_common()) if charset is not None else {}
    return {"bad_files": len(bad), "bad_examples": [str(b) for b in bad[:5]], "oov_replaced": replaced}


# ---- the line cache ---------------------------------------------------------------------------------------
class CachedLines(Dataset):
    """Base of datasets whose lines are decoded from files (or generated) once, resized to ``cfg.height``
    and cached as one ``.npz`` under ``<cache>/lines/``.

    A subclass sets ``self.charset`` and implements :meth:`render_all`, yielding
    ``(id, image_or_None, text, source_path, error)`` for every line in order (``image`` uint8, ink bright,
    any height); an ``error`` with ``cfg.skip_bad`` is recorded in :attr:`bad_files` and the line skipped,
    without it a :class:`DataError` names the file. The cache key holds the config height, ``skip_bad`` and
    whatever ``key_info`` the subclass passes (its files' digest), so editing data invalidates it.
    """

    def __init__(self, name: str, cfg: DataConfig, key_info: dict, ids: list[str] | None = None):
        self.cfg = cfg
        self.key_info = {**key_info, "height": cfg.height, "skip_bad": cfg.skip_bad,
                         "line_bounds": [MAX_LINE_CHARS, MAX_LINE_ASPECT]}
        self.cache_path = cache_base(cfg) / "lines" / f"{name}-{stable_hash(self.key_info)}.npz"
        self._ids = ids
        self._data: dict[str, Any] | None = None

    def render_all(self) -> Iterator[tuple[str, np.ndarray | None, str, Path | None, str | None]]:
        raise NotImplementedError

    def checked_lines(self) -> Iterator[tuple[str, np.ndarray | None, str, Path | None, str | None]]:
        """:meth:`render_all` with a line over the size bounds (:func:`~ocrbench.data.samples.line_problem`) turned
        into an error: the one place loading, training and ``data check`` bound the work per line."""
        for item, image, text, source, error in self.render_all():
            problem = None if image is None else line_problem(text, *image.shape[::-1])
            yield (item, None, text, source, problem) if problem else (item, image, text, source, error)

    def sample_meta(self, index: int) -> dict:
        return {"id": self._load()["ids"][index]}

    # -- access --
    def __len__(self) -> int:
        return len(self._load()["widths"])

    def __getitem__(self, index: int) -> LineSample:
        data = self._load()
        if not 0 <= index < len(data["widths"]):
            raise IndexError(f"index {index} out of range for {len(data['widths'])} lines")
        a, b = data["offsets"][index], data["offsets"][index + 1]
        image = data["pixels"][a:b].reshape(self.cfg.height, -1)
        return LineSample(image, data["texts"][index], self.sample_meta(index))

    @property
    def bad_files(self) -> list[BadFile]:
        return [BadFile(**b) for b in self._load()["bad"]]

    @property
    def integrity(self) -> dict:
        return integrity_summary(self)

    def _record_index(self, index: int) -> int:
        """Position in the subclass's own record list of cached line ``index`` (skipped lines shift it)."""
        return int(self._load()["record"][index])

    # -- building --
    def _load(self) -> dict[str, Any]:
        if self._data is None:
            try:
                self._data = load_lines(self.cache_path, self.key_info, self.cfg.height)
            except FileNotFoundError:
                self._data = self._build()
            except Exception:  # a corrupt cache is rebuilt, never trusted
                self.cache_path.unlink(missing_ok=True)
                self._data = self._build()
        return self._data

    def _build(self) -> dict[str, Any]:
        images, texts, ids, record, bad = [], [], [], [], []
        for k, (item, image, text, source, error) in enumerate(self.checked_lines()):
            if error is not None:
                if not self.cfg.skip_bad:
                    raise DataError(f"{source}: {error} (line {item}); {SKIP_HINT}")
                bad.append({"path": str(source), "reason": error, "item": item})
                continue
            images.append(resize_to_height(image, self.cfg.height))
            texts.append(text)
            ids.append(item)
            record.append(k)
        save_lines(self.cache_path, images, texts, ids, record, bad, self.key_info)
        return load_lines(self.cache_path, self.key_info, self.cfg.height)


def save_lines(path: Path, images: list[np.ndarray], texts: list[str], ids: list[str], record: list[int],
               bad: list[dict], key_info: dict) -> None:
    """One flat pixel buffer + widths + texts + ids; written to a temp file and renamed (atomic)."""
    as_bytes = lambda obj: np.frombuffer(json.dumps(obj, sort_keys=True, default=str).encode(), np.uint8)  # noqa: E731
    arrays = {
        "pixels": np.concatenate([im.ravel() for im in images]) if images else np.zeros(0, np.uint8),
        "widths": np.array([im.shape[1] for im in images], dtype=np.int32),
        "record": np.array(record, dtype=np.int64),
        "texts": as_bytes(texts), "ids": as_bytes(ids), "bad": as_bytes(bad), "key": as_bytes(key_info),
    }
    save_npz(path, arrays, compressed=False)  # uncompressed: fast to read every epoch


def load_lines(path: Path, key_info: dict, height: int) -> dict[str, Any]:
    """The cached arrays, checked against the key and for consistent sizes (ValueError when not)."""
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in ("pixels", "widths", "record", "texts", "ids", "bad", "key")}
    decode = lambda a: json.loads(a.tobytes().decode())  # noqa: E731
    if decode(data["key"]) != json.loads(json.dumps(key_info, sort_keys=True, default=str)):
        raise ValueError("cache key does not match")
    texts, ids, bad = decode(data["texts"]), decode(data["ids"]), decode(data["bad"])
    n = len(data["widths"])
    if not (len(texts) == len(ids) == len(data["record"]) == n) or data["pixels"].size != height * int(
            data["widths"].sum()):
        raise ValueError("cache arrays have inconsistent sizes")
    offsets = np.concatenate([[0], np.cumsum(data["widths"].astype(np.int64) * height)])
    return {"pixels": data["pixels"], "offsets": offsets, "widths": data["widths"], "record": data["record"],
            "texts": texts, "ids": ids, "bad": bad}


# ---- ocrbench data check ----------------------------------------------------------------------------------
@dataclass
class CheckReport:
    """Result of ``ocrbench data check NAME --root PATH``."""

    dataset: str
    root: Path | None
    ok: bool = True
    counts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hint: str = ""

    def fail(self, problem: str, hint: str = "") -> None:
        self.ok = False
        self.problems.append(problem)
        if hint:
            self.hint = hint

    def bad(self, path: str | Path, reason: str, item: str = "") -> None:
        self.bad_files.append(BadFile(str(path), reason, item))

    def bad_count(self) -> str:
        """"2 bad lines and 1 bad file": a problem of one line (an empty box) is not a bad file."""
        n_lines = sum(1 for b in self.bad_files if b.item)
        n_files = len(self.bad_files) - n_lines
        parts = [f"{n} bad {what}{'s' if n != 1 else ''}" for n, what in ((n_lines, "line"), (n_files, "file")) if n]
        return " and ".join(parts)

    def as_dict(self, skip_bad: bool = False) -> dict:
        ok = self.ok and (skip_bad or not self.bad_files)
        return {"dataset": self.dataset, "root": str(self.root) if self.root else None, "ok": ok,
                "counts": self.counts, "problems": self.problems, "bad_files": len(self.bad_files),
                "bad_examples": [str(b) for b in self.bad_files[:20]], "notes": self.notes, "hint": self.hint,
                "text": self.text(skip_bad)}

    def text(self, skip_bad: bool = False) -> str:
        ok = self.ok and (skip_bad or not self.bad_files)
        where = f" at {self.root}" if self.root else ""
        lines = [f"{self.dataset}{where}: {'OK' if ok else 'PROBLEMS FOUND'}"]
        lines += [f"  {k}: {v:,}" if isinstance(v, int) else f"  {k}: {v}" for k, v in self.counts.items()]
        lines += [f"  problem: {p}" for p in self.problems]
        if self.bad_files:
            verdict = "skipped and counted with --skip-bad" if skip_bad else f"fail loading ({SKIP_HINT})"
            lines.append(f"  {self.bad_count()}, which {verdict}:")
            lines += [f"    {b}" for b in self.bad_files[:20]]
            if len(self.bad_files) > 20:
                lines.append(f"    ... and {len(self.bad_files) - 20} more")
        lines += [f"  note: {n}" for n in self.notes]
        if self.hint:
            lines.append(f"  what to do: {self.hint}")
        return "\n".join(lines)
