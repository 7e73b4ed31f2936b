"""The on-disk cache shared by every generated or decoded dataset (and the character LM).

Location: ``cfg.cache_dir``, else ``$OCRBENCH_CACHE``, else ``~/.cache/ocrbench``. Files are written to a
temp file beside their destination and renamed (:func:`ocrbench.records.atomic_write`), so an interrupted
write never leaves a broken cache entry.

:func:`load_or_generate` is the cache-or-generate step of the generated datasets (synth-lines, synth-pages):
read the split's ``.npz`` when it is there and sound, else render the split (in a process pool when it is
large; every sample seeds itself, so the pixels do not depend on the worker count), save it and read it back.

:class:`CachedLines` is the base of the datasets decoded from files (IAM, EMNIST lines, ALTO/PAGE folders): each
line is checked and resized once, a bad file is skipped and counted (:mod:`ocrbench.data.integrity`) or named,
and the split is cached as one ``.npz`` under ``<cache>/lines/``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..config import DataConfig
from ..errors import DataError
from ..progress import progress_bar
from ..records import atomic_write, stable_digest
from ..runtime import usable_cores
from .integrity import SKIP_HINT, BadFile, integrity_summary
from .samples import MAX_LINE_ASPECT, MAX_LINE_CHARS, LineSample, line_problem, resize_to_height

Render = Callable[[str, int, int, int, Mapping[str, Any]], Any]  # (split, index, seed, height, options) -> sample


def cache_home(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir or os.environ.get("OCRBENCH_CACHE") or Path.home() / ".cache" / "ocrbench")


def stable_hash(obj: Any) -> str:
    """Short content hash of plain data (line cache file names): sha1 of its canonical JSON, 16 hex digits."""
    return stable_digest(obj, "sha1").hex()[:16]


def cache_base(cfg: DataConfig) -> Path:
    return cache_home(cfg.cache_dir)


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
    return usable_cores() if size >= parallel_min else 1


def _render_range(job: tuple) -> list:
    render, split, start, stop, seed, height, options = job
    return [render(split, i, seed, height, options) for i in range(start, stop)]


def render_in_order(render_range: Callable[[tuple], list], jobs: Sequence[tuple], total: int, desc: str,
                    unit: str, workers: int = 1, progress: bool = True) -> list:
    """Run ``render_range`` over ``jobs`` (in a process pool when ``workers > 1``) and concatenate the
    results in job order; since every sample seeds itself, the output is the same for any worker count."""
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

    def widths(self) -> np.ndarray:
        """Every line's width in pixels at ``cfg.height`` (batching by width reads these, not the pixels)."""
        return self._load()["widths"]

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
                bad.append({"path": str(source), "reason": error, "item": item})
                continue
            images.append(resize_to_height(image, self.cfg.height))
            texts.append(text)
            ids.append(item)
            record.append(k)
        if bad and not self.cfg.skip_bad:  # every line was read first, so the error can say how many are affected
            raise DataError(unreadable_lines_message(bad, len(images) + len(bad)))
        save_lines(self.cache_path, images, texts, ids, record, bad, self.key_info)
        return load_lines(self.cache_path, self.key_info, self.cfg.height)


def unreadable_lines_message(bad: list[dict], total: int) -> str:
    """One line for a split with unreadable lines: the first, and how many of the split's lines are affected."""
    first = bad[0]
    count = f"{len(bad)} of {total} lines {'is' if len(bad) == 1 else 'are'} affected"
    return f"{first['path']}: {first['reason']} (line {first['item']}); {count}; {SKIP_HINT}"


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
