"""The checkpoint zoo: an index of reference checkpoints (in the package, small), the files elsewhere.

``zoo_index.json`` beside this module lists, for each reference checkpoint a suite produced, its model, suite,
seed, score on the suite's test split (greedy CER for recognizers, measured on the file when it was packed; AP
for detectors, the suite's record), the data version, and two files with their size and sha256: the checkpoint
``NAME.pt`` and the run's resolved config ``NAME.yaml`` (the data settings of that score). The files live in a
folder or behind a URL (a release's assets): ``zoo:NAME`` resolves to ``<source>/<file>`` where the source is
``--zoo-dir``, else the package's own ``zoo/`` folder where it holds the file (:data:`PACKAGED`: the synthetic
pretraining checkpoints the real track fine-tunes from, trained by ocrbench on data it generates), else
``$OCRBENCH_ZOO`` (a folder, or an ``http(s)://``/``file://`` base, downloaded once into ``<cache>/zoo/``), else
the entry's ``url``. Every file is checked against the index's sha256 before use.

A zoo checkpoint is slim (:func:`pack`): the model's name, arguments, charset and weights (what
:func:`ocrbench.harness.checkpoint.load_model` reads), without the optimizer and RNG states of a run's
checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.download import sha256_of  # the one file hash of the downloads, reused for zoo files
from ..errors import UnknownNameError, UserError
from ..records import atomic_write, atomic_write_text, git_revision, read_records

PREFIX = "zoo:"
ENV = "OCRBENCH_ZOO"
INDEX = Path(__file__).with_name("zoo_index.json")
PACKAGED = Path(__file__).with_name("zoo")  # the zoo files the package ships (small ones only)
URL_SCHEMES = ("http://", "https://", "file://")


@dataclass(frozen=True)
class ZooEntry:
    name: str
    model: str
    task: str
    suite: str
    seed: int
    metric: str  # "cer" (recognizers, greedy) or "ap" (detectors), on the suite's test split
    score: float  # measured on this file when it was packed (recognizers), else the suite's record
    record_score: float  # the suite's record for the same configuration (an earlier training may differ)
    dataset: str
    data_version: str | None
    config_hash: str
    git: str | None  # the revision that packed (and scored) the file
    file: str
    size: int
    sha256: str
    config_file: str  # the run's resolved config.yaml: the data settings the score was measured with
    config_sha256: str
    url: str | None = None  # where the release publishes both files (a URL base)


def load_index(path: str | Path | None = None) -> dict[str, ZooEntry]:
    """The entries of the zoo index at ``path`` (default: the package's, :data:`INDEX`)."""
    path = Path(path or INDEX)
    if not path.is_file():
        raise UserError(f"zoo index not found: {path}")
    return {e["name"]: ZooEntry(**e) for e in json.loads(path.read_text())["checkpoints"]}


def write_index(entries: dict[str, ZooEntry], path: str | Path | None = None) -> None:
    body = {"checkpoints": [asdict(entries[n]) for n in sorted(entries)]}
    atomic_write_text(Path(path or INDEX), json.dumps(body, indent=1) + "\n")


def find(name: str, index: str | Path | None = None) -> ZooEntry:
    entries = load_index(index)
    if name not in entries:
        raise UnknownNameError("zoo checkpoint", name, list(entries))
    return entries[name]


def is_zoo(spec: str) -> bool:
    return str(spec).startswith(PREFIX)


def resolve(spec: str, zoo_dir: str | None = None, index: str | Path | None = None,
            cache: str | Path | None = None) -> tuple[Path, Path, ZooEntry]:
    """The verified local checkpoint and run config of ``zoo:NAME``, and its index entry (see the module
    docstring)."""
    entry = find(spec[len(PREFIX):], index)
    source = zoo_dir or (str(PACKAGED) if is_packaged(entry) else os.environ.get(ENV) or entry.url)
    if not source:
        raise UserError(f"zoo checkpoint {entry.name} has no download URL: pass --zoo-dir DIR (or set ${ENV}) "
                        f"to the folder or URL that holds {entry.file}")
    return (_fetch(entry, entry.file, entry.sha256, source, cache),
            _fetch(entry, entry.config_file, entry.config_sha256, source, cache), entry)


def is_packaged(entry: ZooEntry) -> bool:
    """Whether the package ships both files of ``entry`` (in :data:`PACKAGED`)."""
    return (PACKAGED / entry.file).is_file() and (PACKAGED / entry.config_file).is_file()


def _fetch(entry: ZooEntry, name: str, sha256: str, source: str, cache: str | Path | None) -> Path:
    """The file ``name`` of the zoo ``source`` (a folder, or a URL base: downloaded into the cache), verified."""
    if source.startswith(URL_SCHEMES):
        path = _download(f"{source.rstrip('/')}/{name}", _cache_folder(cache) / name, sha256)
    else:
        path = Path(source) / name
        if not path.is_file():
            raise UserError(f"zoo checkpoint {entry.name}: {path} not found; put {name} there, or point "
                            f"--zoo-dir / ${ENV} at the folder or URL that holds it")
    found = sha256_of(path)
    if found != sha256:
        raise UserError(f"{path}: sha256 {found[:16]}... is not the zoo index's {sha256[:16]}... for "
                        f"{entry.name}: the file is damaged or another version; fetch it again")
    return path


def _cache_folder(cache: str | Path | None) -> Path:
    from ..data.cache import cache_home  # the one cache location (cfg / $OCRBENCH_CACHE / ~/.cache/ocrbench)

    return cache_home(cache) / "zoo"


def _download(url: str, path: Path, sha256: str) -> Path:
    """``url`` to ``path`` (atomically), unless a file with the right sha256 is already there."""
    if path.is_file() and sha256_of(path) == sha256:
        return path

    def fetch(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
            shutil.copyfileobj(response, f)

    try:
        atomic_write(path, fetch)
    except OSError as e:  # URLError is an OSError
        raise UserError(f"cannot download {url}: {getattr(e, 'reason', e)}") from None
    return path


# ---- making entries from a suite's runs -------------------------------------------------------------------
def run_record(checkpoint: dict, results: str | Path) -> dict:
    """The record of the run that wrote ``checkpoint`` (same config hash) scored on its training dataset's
    test split (recognizers: greedy), from ``results``/runs.jsonl."""
    rows = [r for r in read_records(Path(results) / "runs.jsonl")
            if r.get("config_hash") == checkpoint.get("config_hash") and r.get("status") == "ok"
            and r.get("split") == "test" and r.get("dataset") == r.get("train_dataset")
            and r.get("decoder", "greedy") == "greedy"]
    if not rows:
        raise UserError(f"no ok test record of config hash {checkpoint.get('config_hash')} in {results}/runs.jsonl: "
                        "pack checkpoints of the suite whose results you name")
    return rows[-1]


def pack(checkpoint_path: str | Path, results: str | Path, out: str | Path, url_base: str | None = None
         ) -> ZooEntry:
    """Write the slim zoo file of a run's checkpoint to ``out`` and return its index entry. A recognizer's score
    is measured on that file (greedy CER on the test split of the run's config.yaml), since a suite's record
    may come from an earlier training of the same configuration; the record's score is kept beside it. A
    detector's is its record's AP."""
    from ..harness.checkpoint import checkpoint_file, load_checkpoint, save_torch

    path = checkpoint_file(checkpoint_path)
    ckpt = load_checkpoint(path)
    record = run_record(ckpt, results)
    name = f"{record['model']}-{record['suite']}-s{record['seed']}"
    target = Path(out) / f"{name}.pt"
    slim = {"meta": ckpt["meta"], "model": ckpt["model"], "config_hash": ckpt.get("config_hash")}
    atomic_write(target, lambda tmp: save_torch(slim, tmp))
    config = target.with_suffix(".yaml")
    atomic_write_text(config, (path.parent / "config.yaml").read_text())
    detector = record.get("task") == "detection"
    recorded = round(record["ap" if detector else "cer"], 6)
    score, version = (recorded, record.get("data_version")) if detector else measured_cer(target, path.parent)
    return ZooEntry(name=name, model=record["model"], task=record.get("task", "recognition"), suite=record["suite"],
                    seed=record["seed"], metric="ap" if detector else "cer", score=score, record_score=recorded,
                    dataset=record["dataset"], data_version=version, config_hash=record["config_hash"],
                    git=git_revision(), file=target.name, size=target.stat().st_size, sha256=sha256_of(target),
                    config_file=config.name, config_sha256=sha256_of(config), url=url_base)


def measured_cer(path: Path, run_folder: Path) -> tuple[float, str | None]:
    """Greedy CER of the checkpoint at ``path`` on the test split of the run's config.yaml, and that split's
    data version."""
    from dataclasses import replace

    from ..config import load_suite
    from ..datasets import create_dataset
    from ..harness.checkpoint import load_model
    from ..harness.evaluate import evaluate

    model = load_model(path)
    suite = load_suite(run_folder / "config.yaml")
    data = replace(suite.data, height=model.info.input_height, oov="replace")
    dataset = create_dataset(data.name, "test", data)
    result = evaluate(model, dataset, "greedy", batch_size=suite.train.eval_batch_size, device="cpu")
    return round(result.cer, 6), getattr(dataset, "version", None)
