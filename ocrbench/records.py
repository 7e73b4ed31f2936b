"""Result records: one JSON object per line, appended atomically, each stamped with its environment.

A record is written with a single ``write`` on a file opened ``O_APPEND`` and then fsync'ed, so concurrent
writers never interleave and a killed run leaves every earlier line intact. When reading, a line that is not
a record (a torn last line after a power loss, or valid JSON of another shape) is skipped with a warning
naming ``file:line``.

Also here, as the lowest module every layer may import: :func:`atomic_write` (the one way ocrbench replaces a
file: temp file + rename, the temp file removed when the write fails) and :func:`stable_digest` (the one
content hash of plain data, behind config hashes, cache names and sample seeds).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import secrets
import subprocess
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .errors import UserError

RUNS_FILE = "runs.jsonl"
PROFILES_FILE = "profiles.jsonl"  # one row per profiled model (ocrbench.profile), beside the runs
# {evaluation set: the command that downloads it}: the sets a suite's last run skipped (ocrbench.bench.suite), shown by
# the leaderboard where their column would be
NOT_DOWNLOADED_FILE = "not_downloaded.json"
# The keys every record has, so readers may index them: run records (``bench.suite.base_record``, ok or failed)
# and profile rows (``kind: "profile"``, ocrbench/profile/runner.py, ok, n/a or error) name their model and
# status; a run record also names the dataset and split it was scored on (the leaderboard's keys).
RECORD_KEYS = ("model", "status")
RUN_RECORD_KEYS = RECORD_KEYS + ("dataset", "split")


def append_record(path: str | Path, record: dict) -> None:
    """Append ``record`` as one line: the whole line or nothing. A torn last line (a write cut off by a kill
    or a full disk) is cut off first, so the new line never glues onto it; a failed write (ENOSPC) truncates
    the file back to where it was, then raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = _drop_partial_line(fd, path)
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "short write", str(path))
            os.fsync(fd)
        except BaseException as e:
            os.ftruncate(fd, size)
            if isinstance(e, OSError) and e.filename is None:
                e.filename = str(path)  # so the user's one line names the file
            raise
    finally:
        os.close(fd)


def _drop_partial_line(fd: int, path: Path) -> int:
    """Cut off a last line that has no newline (moved to ``<file>.partial``, with a warning saying so);
    returns the size of the file of whole lines."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    tail_start = size
    while tail_start > 0:  # back to the byte after the last newline, in blocks
        start = max(0, tail_start - 65536)
        block = os.pread(fd, tail_start - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            tail_start = start + cut + 1
            break
        tail_start = start
    partial = path.with_name(path.name + ".partial")
    with open(partial, "ab") as f:
        f.write(os.pread(fd, size - tail_start, tail_start) + b"\n")
    os.ftruncate(fd, tail_start)
    warnings.warn(f"{path}: its last line was cut off (an interrupted write); moved it to {partial} "
                  "so that new records start on a line of their own", stacklevel=3)
    return tail_start


def read_records(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file, in order; lines that are not records are skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            warnings.warn(f"{path}:{n}: skipping a malformed record (an interrupted write?)", stacklevel=2)
            continue
        problem = _not_a_record(record)
        if problem:
            warnings.warn(f"{path}:{n}: skipping a line that is not a record ({problem})", stacklevel=2)
            continue
        records.append(record)
    return records


def _not_a_record(value) -> str | None:
    """Why ``value`` (one parsed line) is not a record, or None when it is one."""
    if not isinstance(value, dict):
        names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
        return f"{names.get(type(value), 'a number')}, not an object"
    required = RECORD_KEYS if value.get("kind") == "profile" else RUN_RECORD_KEYS
    missing = [k for k in required if k not in value]
    return f"no {', '.join(missing)}" if missing else None


def check_writable(folder: str | Path, what: str, fix: str) -> None:
    """A folder that cannot be written is one line now (``cannot write {what} to {folder}: ...; {fix}``), not a
    failure after training: created when missing, probed with a file that is removed again."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{secrets.token_hex(4)}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write {what} to {folder}: {e.strerror or e}; {fix}") from None


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` to fill a temp file beside ``path``, then rename it over ``path`` in one step.

    Readers see the old file or the new one, never half of either. When ``write`` (or the rename) fails, the
    temp file is removed and ``path`` is left as it was; the error propagates. The one implementation of
    atomic file writes in ocrbench (text results, ``.npz`` caches, checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per process and call, in the destination folder (a rename across file systems is not atomic);
    # created by ``write`` itself, so it gets the usual permissions rather than mkstemp's 0600
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def stable_digest(obj: Any, algorithm: str = "sha256", default: Callable[[Any], Any] | None = str) -> bytes:
    """Digest of ``obj`` as canonical JSON (sorted keys): the same for equal data on every machine and run.

    The one implementation behind ocrbench's content hashes (config hashes, cache file names, sample seeds);
    each caller keeps its own algorithm and length, since those name committed results and caches.
    ``default`` renders what JSON cannot (``str``); None refuses such values (``TypeError``).
    """
    return hashlib.new(algorithm, json.dumps(obj, sort_keys=True, default=default).encode()).digest()


@lru_cache(maxsize=1)
def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent, timeout=5)
        if rev.returncode != 0:
            return "unknown"
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model() or platform.processor() or platform.machine() or "cpu"


@lru_cache(maxsize=1)
def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def environment(device: torch.device | str) -> dict:
    """What produced a number: device, library versions, threads, git revision."""
    device = torch.device(device)
    env = {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "git": git_revision(),
    }
    if device.type == "cuda":
        env.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   tf32_matmul=torch.backends.cuda.matmul.allow_tf32, cudnn_benchmark=torch.backends.cudnn.benchmark)
    return env
