"""The on-disk cache shared by every generated or decoded dataset (and the character LM).

Location: ``cfg.cache_dir``, else ``$OCRBENCH_CACHE``, else ``~/.cache/ocrbench``. Files are written to a
temp file beside their destination and renamed (:func:`ocrbench.records.atomic_write`), so an interrupted
write never leaves a broken cache entry.

:func:`load_or_generate` is the cache-or-generate step of the generated datasets (synth-lines, synth-pages):
read the split's ``.npz`` when it is there and sound, else render the split (in a process pool when it is
large; every sample seeds itself, so the pixels do not depend on the worker count), save it and read it back.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from ..records import atomic_write

Render = Callable[[str, int, int, int, Mapping[str, Any]], Any]  # (split, index, seed, height, options) -> sample


def cache_home(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir or os.environ.get("OCRBENCH_CACHE") or Path.home() / ".cache" / "ocrbench")


def save_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool = True) -> None:
    """Write ``arrays`` to ``path`` atomically (no temp file is left behind when the write fails)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a bare name
            (np.savez_compressed if compressed else np.savez)(f, **arrays)

    atomic_write(path, write)


def key_array(key_info: Mapping[str, Any]) -> np.ndarray:
    """``key_info`` as canonical JSON bytes, stored in a cache file so that reading can check it."""
    return np.frombuffer(json.dumps(key_info, sort_keys=True).encode(), dtype=np.uint8)


def load_or_generate(path: Path, key_info: Mapping[str, Any], generate: Callable[[], dict[str, np.ndarray]],
                     unpack: Callable[[dict[str, np.ndarray]], dict[str, Any]], name: str) -> dict[str, Any]:
    """The arrays cached at ``path``, passed through ``unpack``; when the file is missing or corrupt (unreadable,
    another key, arrays ``unpack`` rejects with an exception), ``generate()``'s arrays are saved there first.

    ``key_info`` (everything the content depends on) is stored beside the arrays and must match on reading;
    a corrupt file is regenerated with a warning naming it (``name``: the dataset, for the message).
    """
    if path.exists():
        try:
            return _read(path, key_info, unpack)
        except Exception as e:  # any unreadable file: zip, npy header, decode, key or size errors
            warnings.warn(f"{name} cache {path} is corrupt ({e}); regenerating it", stacklevel=4)
    save_npz(path, {**generate(), "key": key_array(key_info)})
    return _read(path, key_info, unpack)


def _read(path: Path, key_info: Mapping[str, Any], unpack: Callable[[dict[str, np.ndarray]], dict[str, Any]]
          ) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if json.loads(data.pop("key").tobytes().decode()) != json.loads(json.dumps(key_info, sort_keys=True)):
        raise ValueError("cache key does not match its file name")
    return unpack(data)


def generate_split(render: Render, split: str, size: int, seed: int, height: int, options: Mapping[str, Any],
                   desc: str, unit: str, chunk: int, workers: int = 1, progress: bool = True) -> list:
    """``render(split, i, seed, height, options)`` for i in 0..size-1, in order, in jobs of ``chunk`` samples
    (on ``workers`` processes). ``render`` must be a module-level function: the pool pickles it by name."""
    jobs = [(render, split, a, min(a + chunk, size), seed, height, dict(options)) for a in range(0, size, chunk)]
    return render_in_order(_render_range, jobs, size, f"{desc} {split}", unit, workers, progress)


def pool_size(size: int, parallel_min: int) -> int:
    """Worker processes for generating ``size`` samples: every core this process may use from ``parallel_min``
    samples on (below that, starting the processes costs more than they save), else one. The affinity mask,
    not the machine's count: a job given 2 cores of 64 (SLURM, taskset) must not start 64 processes."""
    from ..runtime import usable_cores  # here: the runtime module imports the data package

    return usable_cores() if size >= parallel_min else 1


def _render_range(job: tuple) -> list:
    render, split, start, stop, seed, height, options = job
    return [render(split, i, seed, height, options) for i in range(start, stop)]


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
