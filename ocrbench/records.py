"""Result records: one JSON object per line, appended atomically, each stamped with its environment.

A record is written with a single ``write`` on a file opened ``O_APPEND`` and then fsync'ed, so concurrent
writers never interleave and a killed run leaves every earlier line intact. When reading, a line that is not
a record (a torn last line after a power loss, or valid JSON of another shape) is skipped with a warning
naming ``file:line``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import warnings
from functools import lru_cache
from pathlib import Path

import torch

RUNS_FILE = "runs.jsonl"
# The keys every record has, so readers may index them: run records (suite.py ``_base_record``, ok or failed)
# and profile rows (``kind: "profile"``, ocrbench/profile/runner.py, ok, n/a or error) name their model and
# status; a run record also names the dataset and split it was scored on (the leaderboard's keys).
RECORD_KEYS = ("model", "status")
RUN_RECORD_KEYS = RECORD_KEYS + ("dataset", "split")


def append_record(path: str | Path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


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
