"""The identity of a run: every hash and row key of a suite is defined here, and nowhere else.

- :func:`run_hash` names one trained model (model entry, data, recipe, seed); :func:`config_id` the same without
  the seed (the rows a leaderboard averages); :func:`decoder_hash` a decoder's settings. Together with the
  evaluation set they key a row (:func:`row_key`): what a job owes (:func:`expected_rows`) and what a results
  folder holds (:func:`recorded_rows`) are sets of those keys, so a rerun produces only the missing rows.
- :func:`job_identity` is the part of a record that says which job wrote it, asking the machine nothing.
- :func:`run_dir` is where a run keeps its checkpoint, named by its hash.

:mod:`ocrbench.config` only provides the digest (:func:`~ocrbench.config.config_hash`, also the LM cache's key);
what goes into each hash is decided here. Changing anything in this module can orphan the committed reference
rows: ``tests/bench/test_identity.py`` checks every one of them.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

from ..config import (
    DataConfig,
    LMConfig,
    ModelEntry,
    SuiteConfig,
    TrainConfig,
    config_hash,
    for_model,
    to_dict,
)
from ..decoding import BEST_PATH
from ..harness import distributed
from ..models import model_task, model_version
from ..records import RUNS_FILE, read_records


def run_hash(entry: ModelEntry, cfg: SuiteConfig) -> str:
    """Identity of one trained model: the model entry, data and recipe, seed included (not the decoders,
    evaluation sets, suite name or paths: those change no weights). A model's registered version is part of
    it from 2 on (version 1 runs keep the identity they had before versions existed), and so is the number of
    data-parallel processes from 2 on: their per-process BatchNorm statistics make a slightly different model,
    whose rows must not be averaged with, or resumed as, the one-process run's."""
    cfg = for_model(entry, cfg)
    version, world = model_version(entry.name), distributed.env_world_size()
    return config_hash(entry.name, entry.kwargs, data_identity(cfg.data), train_identity(cfg.train),
                       *([{"model_version": version}] if version != 1 else []),
                       *([{"world_size": world}] if world > 1 else []))


# TrainConfig fields added after reference results were committed: left out of the hash at these defaults,
# so every earlier run keeps its identity (and a run that sets them gets a new one)
HASH_NEUTRAL_DEFAULTS = {"compile": False, "deterministic": False, "batching": "random", "init_from": None,
                         "augmentation": "mild"}
DATA_HASH_NEUTRAL_DEFAULTS = {"train_lines": None}  # the same for DataConfig...
LM_HASH_NEUTRAL_DEFAULTS = {"corpus": "austen-train", "ctc_weight": None, "joint_weight": 0.3}  # ...and for LMConfig
LM_SCORES_ONLY = ("held_out",)  # LMConfig fields that change what is reported about the LM, never a decoding


def train_identity(train: TrainConfig) -> dict:
    """The recipe fields that identify a run: max_minutes is a safety limit, not part of the configuration
    (a run it stops is marked truncated)."""
    fields = to_dict(replace(train, max_minutes=None))
    return {k: v for k, v in fields.items() if k not in HASH_NEUTRAL_DEFAULTS or v != HASH_NEUTRAL_DEFAULTS[k]}


def data_identity(data: DataConfig) -> dict:
    """The data fields that identify a run (fields added later are left out at their defaults, as above)."""
    return {k: v for k, v in to_dict(data).items()
            if k not in DATA_HASH_NEUTRAL_DEFAULTS or v != DATA_HASH_NEUTRAL_DEFAULTS[k]}


def config_id(entry: ModelEntry, cfg: SuiteConfig) -> str:
    """:func:`run_hash` without the seed: the rows of one configuration, whose seeds a leaderboard averages."""
    return run_hash(entry, replace(cfg, train=replace(cfg.train, seed=0)))


def decoder_hash(decoder: str, lm_cfg: LMConfig) -> str:
    """Identity of a decoder's settings: beam width and LM change the numbers, best path (greedy, ctc) has none."""
    if decoder in BEST_PATH:
        return ""
    fields = {k: v for k, v in to_dict(lm_cfg).items() if k not in LM_SCORES_ONLY
              and (k not in LM_HASH_NEUTRAL_DEFAULTS or v != LM_HASH_NEUTRAL_DEFAULTS[k])}
    return config_hash(decoder, fields)


def run_dir(entry: ModelEntry, cfg: SuiteConfig) -> Path:
    return Path(cfg.runs_dir) / cfg.name / f"{entry.name}-{run_hash(entry, cfg)}"


def with_seed(cfg: SuiteConfig, seed: int) -> SuiteConfig:
    return replace(cfg, train=replace(cfg.train, seed=seed))


def job_identity(entry: ModelEntry, cfg: SuiteConfig) -> dict:
    """The fields that say which job a record belongs to and with what recipe; no machine is asked anything
    (an executor that lost a job writes its failed row with these, on a machine that may not run it)."""
    return {
        "run_id": uuid.uuid4().hex[:12], "suite": cfg.name, "model": entry.name, "dataset": cfg.data.name,
        "split": cfg.eval_split, "train_dataset": cfg.data.name, "config_hash": run_hash(entry, cfg),
        "config_id": config_id(entry, cfg), "seed": cfg.train.seed, "steps_budget": cfg.train.steps,
        "precision": cfg.train.precision, "batch_size": cfg.train.batch_size, "lr": cfg.train.lr,
        "grad_checkpointing": cfg.train.grad_checkpointing, "compile": cfg.train.compile,
        "deterministic": cfg.train.deterministic, "model_version": model_version(entry.name),
        "world_size": distributed.env_world_size(),
    }


def expected_rows(entry: ModelEntry, cfg: SuiteConfig) -> set[tuple[str, str, str]]:
    """The (decoder, decoder settings, dataset) rows one job owes: every decoder on the suite's test split
    and on each evaluation set; a detector owes one row."""
    if model_task(entry.name) != "recognition":
        return {("", "", for_model(entry, cfg).data.name)}
    datasets = (cfg.data.name, *cfg.eval_sets)
    return {(d, decoder_hash(d, cfg.lm), ds) for d in entry.decoders for ds in datasets}


def row_key(record: dict) -> tuple[str, str, str]:
    return record.get("decoder", ""), record.get("decoder_hash", ""), record.get("dataset", "")


def recorded_rows(results_dir: Path, max_minutes: float | None = None) -> dict[str, set[tuple[str, str, str]]]:
    """config_hash -> the (decoder, decoder settings, dataset) rows recorded as ``ok`` in ``results_dir``; a row
    the safety limit truncated is owed again when ``max_minutes`` now allows more than it trained (or is off)."""
    done: dict[str, set] = {}
    for r in read_records(Path(results_dir) / RUNS_FILE):
        if r.get("status") == "ok" and "config_hash" in r and not _may_continue(r, max_minutes):
            done.setdefault(r["config_hash"], set()).add(row_key(r))
    return done


def _may_continue(record: dict, max_minutes: float | None) -> bool:
    if not record.get("truncated"):
        return False
    return not max_minutes or float(record.get("train_seconds") or 0) < max_minutes * 60
