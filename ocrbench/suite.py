"""A suite: every listed model trained and evaluated under the same data and budget, one record each.

Records are appended to ``<results_dir>/runs.jsonl`` as soon as a model is done, so an interrupted suite
keeps what it finished; running it again skips models already recorded under the same configuration and
continues a half-trained model from its checkpoint.
"""

from __future__ import annotations

import sys
import time
import traceback
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml

from .config import LMConfig, ModelEntry, SuiteConfig, config_hash, for_model, to_dict
from .data.charset import Charset
from .data.integrity import integrity_summary
from .data.registry import create_dataset
from .errors import UserError
from .evaluate import evaluate
from .models import create_model, model_task
from .records import RUNS_FILE, append_record, atomic_write_text, environment, read_records
from .runtime import resolve_device
from .train import TrainingDiverged, train


@dataclass
class RunOutcome:
    model: str
    status: str  # "ok", "failed" or "skipped"
    records: list[dict]


def run_hash(entry: ModelEntry, cfg: SuiteConfig) -> str:
    """Identity of one model's run: the model entry, data and recipe (not the suite name or paths)."""
    cfg = for_model(entry, cfg)
    if any(d.startswith("beam") for d in entry.decoders):  # beam width and LM settings change the numbers
        return config_hash(entry, cfg.data, cfg.train, cfg.eval_split, cfg.lm)
    return config_hash(entry, cfg.data, cfg.train, cfg.eval_split)


def run_dir(entry: ModelEntry, cfg: SuiteConfig) -> Path:
    return Path(cfg.runs_dir) / cfg.name / f"{entry.name}-{run_hash(entry, cfg)}"


def dataset_charset(dataset) -> Charset:
    return getattr(dataset, "charset", None) or Charset()


def run_model(entry: ModelEntry, cfg: SuiteConfig, resume: bool = True, progress: bool = True) -> RunOutcome:
    """Train and evaluate one model; a failure becomes a ``failed`` record instead of an exception."""
    task = model_task(entry.name)
    if task not in TASK_RUNNERS:
        raise UserError(f"{entry.name} is a {task} model, and no runner for {task} models is installed")
    results = Path(cfg.results_dir) / RUNS_FILE
    cfg = for_model(entry, cfg)
    base = _base_record(entry, cfg)
    try:
        records = TASK_RUNNERS[task](entry, cfg, base, resume, progress)
    except TrainingDiverged as e:
        records = [{**base, "status": "failed", "error": str(e)}]
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as e:  # one model's bug must not end the suite: record it and go on
        records = [{**base, "status": "failed", "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc(limit=5)}]
    for r in records:
        append_record(results, r)
    return RunOutcome(entry.name, records[0]["status"], records)


def _base_record(entry: ModelEntry, cfg: SuiteConfig) -> dict:
    return {
        "run_id": uuid.uuid4().hex[:12], "suite": cfg.name, "model": entry.name, "dataset": cfg.data.name,
        "split": cfg.eval_split, "config_hash": run_hash(entry, cfg), "seed": cfg.train.seed,
        "precision": cfg.train.precision, "batch_size": cfg.train.batch_size,
        "grad_checkpointing": cfg.train.grad_checkpointing,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **environment(resolve_device(cfg.train.device)),
    }


def skipped_data(train_set, test_set) -> dict:
    """Unreadable files skipped under ``data.skip_bad``, counted in the record so nothing is dropped silently."""
    train, test = integrity_summary(train_set), integrity_summary(test_set)
    return {"bad_files_train": train["bad_files"], "bad_files_test": test["bad_files"],
            "bad_examples": train["bad_examples"] + test["bad_examples"]}


def prepare_model(name: str, kwargs, cfg: SuiteConfig):
    """The training split and a freshly initialised model for it (seeded, charset and height from the data)."""
    train_set = create_dataset(cfg.data.name, "train", cfg.data)
    torch.manual_seed(cfg.train.seed)  # model init; batch order and augmentation are seeded in train()
    model = create_model(name, dataset_charset(train_set), input_height=cfg.data.height, **kwargs)
    return model, train_set


def _train_entry(entry: ModelEntry, cfg: SuiteConfig, base: dict, resume: bool, progress: bool):
    """Datasets, a fresh model, its run folder (with the resolved config) and training: what every task shares."""
    model, train_set = prepare_model(entry.name, entry.kwargs, cfg)
    test_set = create_dataset(cfg.data.name, cfg.eval_split, cfg.data)
    out = run_dir(entry, cfg)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(to_dict(replace(cfg, models=(entry,))), sort_keys=False))
    result = train(model, train_set, cfg.train, out, config_hash=base["config_hash"], resume=resume,
                   progress=progress)
    return model, train_set, test_set, result, out


def _train_and_evaluate(entry: ModelEntry, cfg: SuiteConfig, base: dict, resume: bool, progress: bool):
    model, train_set, test_set, result, out = _train_entry(entry, cfg, base, resume, progress)
    common = {**base, "status": "ok", "task": "recognition", "params": model.num_params(), "steps": result.steps,
              "train_seconds": round(result.seconds, 2), "train_lines_per_s": round(result.lines_per_second, 2),
              "final_loss": result.final_loss, "resumed_from_step": result.resumed_from,
              "checkpoint": str(out / "checkpoint.pt"), **skipped_data(train_set, test_set)}
    records = []
    log = (lambda msg: print(msg, file=sys.stderr)) if progress else None  # stdout may carry --json
    decoding = setup_decoders(model, entry.decoders, cfg.lm, cfg.train.device, log)
    for decoder in entry.decoders:
        ev = evaluate(model, test_set, decoder=decoder, batch_size=cfg.train.eval_batch_size,
                      device=cfg.train.device, precision=cfg.train.precision, progress=progress)
        records.append({**common, **ev.as_dict(), **decoding.get(decoder, {}), "examples": ev.examples})
    if cfg.profile:
        _profile(entry, cfg, base, model.charset)
    return records


def setup_decoders(model, decoders, lm_cfg: LMConfig, device: str = "auto", log=None) -> dict[str, dict]:
    """Give ``model`` the beam width and, when ``decoders`` include "beam+lm", the character LM of ``lm_cfg``
    (its checkpoint, or trained once and cached: :func:`ocrbench.lm.get_lm`). Returns the record fields of
    each beam decoder (beam width, LM weight, the LM's held-out perplexity)."""
    fields = {}
    if "beam" in decoders:
        model.beam_width = lm_cfg.beam_width
        fields["beam"] = {"beam_width": lm_cfg.beam_width}
    if "beam+lm" in decoders and "beam+lm" in getattr(model, "decoders", ()):
        from .lm import get_lm, summary

        lm = get_lm(lm_cfg, model.charset.chars, device=device, log=log)
        model.attach_lm(lm, lm_cfg.weight, lm_cfg.beam_width, lm_cfg.bonus)
        fields["beam+lm"] = {"beam_width": lm_cfg.beam_width, "lm_weight": lm_cfg.weight,
                             "lm_bonus": lm_cfg.bonus, **summary(lm)}
    return fields


def _profile(entry: ModelEntry, cfg: SuiteConfig, base: dict, charset: Charset) -> None:
    """Append the model's profile rows (a fresh instance at the reference shape) to ``profiles.jsonl``; a
    profiling failure is recorded in a row, never raised: the trained model's record stands."""
    from .profile import PROFILES_FILE, suite_profile

    try:
        rows = suite_profile(entry.name, cfg.train, cfg.data.height, charset=charset, model_kwargs=dict(entry.kwargs))
    except Exception as e:
        rows = [{"kind": "profile", "model": entry.name, "status": "error", "error": f"{type(e).__name__}: {e}"}]
    for row in rows:
        append_record(Path(cfg.results_dir) / PROFILES_FILE,
                      {**row, "suite": cfg.name, "dataset": cfg.data.name, "config_hash": base["config_hash"],
                       "run_id": base["run_id"]})


def _train_and_evaluate_detector(entry: ModelEntry, cfg: SuiteConfig, base: dict, resume: bool, progress: bool):
    """A text-line detector: trained with the same recipe on a page dataset, scored with detection metrics
    (see ocrbench.pipeline.evaluate_detector); one record with ``task: detection``."""
    from .data.registry import dataset_info
    from .pipeline import detector_cost, evaluate_detector

    if dataset_info(cfg.data.name).task != "pages":
        raise UserError(f"{entry.name} is a text-line detector and needs a page dataset, not {cfg.data.name!r}: "
                        "e.g. --dataset synth-pages --set data.height=384 --set data.train_size=300 "
                        "--set data.test_size=50 (or a suite entry with data: {name: synth-pages, ...})")
    model, train_set, test_set, result, out = _train_entry(entry, cfg, base, resume, progress)
    ev = evaluate_detector(model, test_set, batch_size=cfg.train.eval_batch_size, device=cfg.train.device,
                           precision=cfg.train.precision, progress=progress)
    return [{**base, "status": "ok", "task": "detection", "params": model.num_params(), "steps": result.steps,
             "train_seconds": round(result.seconds, 2), "train_pages_per_s": round(result.lines_per_second, 2),
             "final_loss": result.final_loss, "resumed_from_step": result.resumed_from,
             "checkpoint": str(out / "checkpoint.pt"), **ev,
             **detector_cost(model, test_set, cfg.train.batch_size, cfg.train.device)}]


# task -> fn(entry, cfg, base_record, resume, progress) -> list of records. Other tasks add theirs here.
TASK_RUNNERS = {"recognition": _train_and_evaluate, "detection": _train_and_evaluate_detector}


def completed(cfg: SuiteConfig) -> set[str]:
    """Config hashes already recorded as ``ok`` in the results file."""
    return {r["config_hash"] for r in read_records(Path(cfg.results_dir) / RUNS_FILE) if r.get("status") == "ok"}


def run_suite(cfg: SuiteConfig, resume: bool = True, progress: bool = True, log=print) -> list[RunOutcome]:
    """Run every model of ``cfg``; with ``resume``, models already recorded under the same config are skipped."""
    if not cfg.models:
        raise UserError(f"suite {cfg.name!r} lists no models")
    for entry in cfg.models:  # fail fast on a typo before hours of training
        model_task(entry.name)
    done = completed(cfg) if resume else set()
    outcomes, t0 = [], time.perf_counter()
    for entry in cfg.models:
        if run_hash(entry, cfg) in done:
            log(f"[{cfg.name}] {entry.name}: already recorded, skipped")
            outcomes.append(RunOutcome(entry.name, "skipped", []))
            continue
        outcome = run_model(entry, cfg, resume=resume, progress=progress)
        first = outcome.records[0]
        log(f"[{cfg.name}] {entry.name}: {outcome.status}"
            + (f"  CER {first['cer']:.4f}  WER {first['wer']:.4f}  ({first['train_seconds']:.0f}s train)"
               if outcome.status == "ok" and "cer" in first else
               f"  AP@0.5 {first['ap50']:.3f}  AP@[.5:.95] {first['ap']:.3f}  F1 {first['f1']:.3f}  "
               f"({first['train_seconds']:.0f}s train)" if outcome.status == "ok" else f"  {first.get('error')}")
            + f"  [{time.perf_counter() - t0:.0f}s elapsed]")
        outcomes.append(outcome)
    return outcomes
