"""The on-disk cache shared by every generated or decoded dataset (and the character LM).

Location: ``cfg.cache_dir``, else ``$OCRBENCH_CACHE``, else ``~/.cache/ocrbench``. Files are written to a
temp file beside their destination and renamed, so an interrupted write never leaves a broken cache entry.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from multiprocessing import get_context
from pathlib import Path

import numpy as np


def cache_home(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir or os.environ.get("OCRBENCH_CACHE") or Path.home() / ".cache" / "ocrbench")


def save_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool = True) -> None:
    """Write ``arrays`` to ``path`` atomically (temp file, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_in_order(render_range: Callable[[tuple], list], jobs: Sequence[tuple], total: int, desc: str,
                    unit: str, workers: int = 1, progress: bool = True) -> list:
    """Run ``render_range`` over ``jobs`` (in a process pool when ``workers > 1``) and concatenate the
    results in job order; since every sample seeds itself, the output is the same for any worker count."""
    from ..progress import progress_bar

    bar = progress_bar(total=total, progress=progress, desc=desc, unit=unit)
    out: list = []
    if workers > 1 and len(jobs) > 1:
        with get_context().Pool(workers) as pool:
            for part in pool.imap(render_range, jobs):
                out.extend(part)
                bar.update(len(part))
    else:
        for job in jobs:
            part = render_range(job)
            out.extend(part)
            bar.update(len(part))
    bar.close()
    return out
