"""Integrity of user-supplied data: file checks, ``--skip-bad`` counting, ``ocrbench data check``.

Rules every loader of real data follows:

* known files are checked (sizes at load time, checksums in ``ocrbench data check``), and a corrupt or
  unreadable file is a :class:`~ocrbench.errors.DataError` naming the file;
* with ``data.skip_bad`` (``--skip-bad``) an unreadable line image is skipped instead, and **counted**:
  ``dataset.integrity`` (``{"bad_files": n, "bad_examples": [...]}``, see :func:`integrity_summary`) goes
  into the result row; nothing is dropped silently;
* decoded lines are resized to ``cfg.height`` once and cached (:class:`~ocrbench.data.cache.CachedLines`), so
  later epochs and runs read one ``.npz`` instead of thousands of scans.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

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
