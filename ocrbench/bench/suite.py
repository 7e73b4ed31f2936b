"""A suite: every listed model trained with every seed under the same data and step budget, then evaluated.

A job is one (model, seed); it owes one record per (decoder, evaluation set). Records are appended to
``<results>/runs.jsonl`` as soon as they exist, so an interrupted suite keeps what it finished; running it
again checks every expected record (not just one per job), continues a half-trained model from its
checkpoint, and evaluates only what is missing.

Planning and running are apart: :func:`plan_suite` lists the jobs and the rows each still owes;
an executor runs them (:func:`run_jobs`, in this process, one after the other; others, such as the Ray
executor of :mod:`ocrbench.bench.executors`, run jobs elsewhere and write what they return). Every record goes
through a sink, ``sink(file_name, record)``: by default appended to ``<results>/<file_name>`` at once.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config import LMConfig, ModelEntry, SuiteConfig, for_model, load_suite, resolve_config, to_dict
from ..data.cache import cache_home
from ..data.charset import Charset, missing_characters
from ..data.integrity import integrity_summary
from ..data.registry import split_name
from ..datasets import create_dataset, dataset_info
from ..decoding import unknown_decoder
from ..errors import NotDownloaded, UserError
from ..harness.callbacks import Callback
from ..harness.checkpoint import CHECKPOINT
from ..harness.evaluate import decoding_fields, evaluate, make_decodings
from ..harness.train import TrainingDiverged, resolve_workers, train
from ..models import create_model, model_task
from ..records import (
    NOT_DOWNLOADED_FILE,
    RUNS_FILE,
    append_record,
    atomic_write_text,
    environment,
    stable_digest,
)
from ..records import check_writable as records_check_writable
from ..runtime import resolve_device
from .identity import (
    decoder_hash,
    expected_rows,
    job_identity,
    recorded_rows,
    run_dir,
    run_hash,
    with_seed,
)


@dataclass
class RunOutcome:
    model: str
    status: str  # "ok", "failed" or "skipped"
    records: list[dict]
    seed: int = 0


# (file name in the results folder, record) -> None: where run_model's records go
Sink = Callable[[str, dict], None]


def file_sink(results: Path) -> Sink:
    """The default sink: each record appended (atomically) to ``results/<file name>`` as soon as it exists."""
    def append(name: str, record: dict) -> None:
        append_record(Path(results) / name, record)
    return append


@dataclass(frozen=True)
class Job:
    """One (model, seed) of a suite: ``cfg`` is the suite at this seed; ``todo`` the rows still owed
    (empty: every row is recorded, the job is skipped)."""
    entry: ModelEntry
    cfg: SuiteConfig
    todo: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)

    @property
    def seed(self) -> int:
        return self.cfg.train.seed

    @property
    def tag(self) -> str:
        return f"[{self.cfg.name}] {self.entry.name} seed {self.seed}"


# (jobs, resume, progress, log) -> one outcome per job, in the jobs' order
Executor = Callable[[Sequence[Job], bool, bool, Callable[..., None]], list[RunOutcome]]


def dataset_charset(dataset) -> Charset:
    return getattr(dataset, "charset", None) or Charset()


def run_model(entry: ModelEntry, cfg: SuiteConfig, resume: bool = True, progress: bool = True,
              todo: set[tuple[str, str, str]] | None = None, callbacks: Sequence[Callback] = (),
              sink: Sink | None = None) -> RunOutcome:
    """Train and evaluate one model with ``cfg.train.seed``; a failure becomes a ``failed`` record instead
    of an exception. ``todo``: the (decoder, decoder settings, dataset) rows still missing (default: all);
    ``callbacks`` observe training, besides those ``cfg.observe`` asks for; ``sink`` receives every record
    (run rows and profile rows) as soon as it exists (default: appended under ``cfg.results_path``)."""
    task = model_task(entry.name)
    if task not in TASK_RUNNERS:
        raise UserError(f"{entry.name} is a {task} model, and no runner for {task} models is installed")
    if sink is None:  # a caller's own sink writes where it likes: it checks its own folder
        check_writable(cfg.results_path)  # before training, so no finished run's record can be lost
        sink = file_sink(cfg.results_path)
    cfg = for_model(entry, cfg)
    check_job_folders(cfg)
    base = base_record(entry, cfg)
    records: list[dict] = []
    try:  # each row is written as soon as it is evaluated: an interrupted job keeps the rows it finished
        for record in TASK_RUNNERS[task](entry, cfg, base, resume, progress, todo, callbacks, sink=sink):
            sink(RUNS_FILE, record)
            records.append(record)
    except TrainingDiverged as e:
        records.append(_failed(sink, {**base, "status": "failed", "error": str(e)}))
    except (UserError, KeyboardInterrupt):
        raise
    except OSError as e:
        if e.errno in DISK_FULL:  # not the model's fault, and no failed row could be written either
            raise disk_full(e) from None
        records.append(_failed(sink, {**base, "status": "failed", "error": f"{type(e).__name__}: {e}",
                                      "traceback": traceback.format_exc(limit=5)}))
    except Exception as e:  # one model's bug must not end the suite: record it and go on
        records.append(_failed(sink, {**base, "status": "failed", "error": f"{type(e).__name__}: {e}",
                                      "traceback": traceback.format_exc(limit=5)}))
    status = "failed" if any(r["status"] == "failed" for r in records) else "ok"
    return RunOutcome(entry.name, status, records, cfg.train.seed)


def _failed(sink: Sink, record: dict) -> dict:
    try:
        sink(RUNS_FILE, record)
    except OSError as e:
        if e.errno in DISK_FULL:
            raise disk_full(e) from None
        raise
    return record


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(e: OSError) -> UserError:
    """The one line a full disk gets: what could not be written, and that finished rows are kept."""
    where = f" writing {e.filename}" if e.filename else ""
    return UserError(f"no space left on the device{where}: free some space (or choose another --out / --results) "
                     "and rerun; finished rows are kept and the run resumes")


def base_record(entry: ModelEntry, cfg: SuiteConfig) -> dict:
    """The fields every record of one job shares: identity, recipe and machine."""
    return {
        **job_identity(entry, cfg),
        "num_workers": resolve_workers(cfg.train.num_workers, resolve_device(cfg.train.device)),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **environment(resolve_device(cfg.train.device)),
    }


def skipped_data(train_set, test_set) -> dict:
    """Unreadable files skipped under ``data.skip_bad``, counted in the record so nothing is dropped silently."""
    train, test = integrity_summary(train_set), integrity_summary(test_set)
    return {"bad_files_train": train["bad_files"], "bad_files_test": test["bad_files"],
            "bad_examples": train["bad_examples"] + test["bad_examples"],
            "oov_replaced_train": train["oov_replaced"], "oov_replaced_test": test["oov_replaced"]}


def warn_replaced(dataset, where: str) -> None:
    """Characters an ``oov: replace`` policy mapped get one line (and the record counts them): never silent."""
    replaced = integrity_summary(dataset)["oov_replaced"]
    if replaced:
        shown = ", ".join(f"{c!r}x{n}" for c, n in list(replaced.items())[:5])
        warnings.warn(f"{where}: replaced {sum(replaced.values())} characters outside the charset (data.oov="
                      f"replace): {shown}; counted in the record as oov_replaced_train/test", stacklevel=2)


def prepare_model(name: str, kwargs, cfg: SuiteConfig):
    """The training split and a freshly initialised model for it (seeded, charset and height from the data)."""
    train_set = create_dataset(cfg.data.name, "train", cfg.data)
    torch.manual_seed(cfg.train.seed)  # model init; batch order and augmentation are seeded in train()
    model = create_model(name, dataset_charset(train_set), input_height=cfg.data.height, **kwargs)
    return model, train_set


def init_spec(entry: ModelEntry, cfg: SuiteConfig) -> str:
    """``train.init_from`` for this entry: ``{model}`` replaced by the model's name (one suite-wide setting,
    ``zoo:{model}-pretrain-s0``, names each family's own checkpoint); empty for a start from scratch."""
    return (cfg.train.init_from or "").replace("{model}", entry.name)


def init_checkpoint(entry: ModelEntry, cfg: SuiteConfig) -> Path | None:
    """The checkpoint ``train.init_from`` names (see :func:`init_spec`): a file, ``zoo:NAME`` (a zoo checkpoint,
    verified against the index: :func:`ocrbench.deploy.zoo.resolve`), or ``suite:NAME``, the same model and
    seed trained by suite NAME (a shipped suite or a YAML file) in this suite's runs folder."""
    spec = init_spec(entry, cfg)
    if not spec:
        return None
    if spec.startswith("zoo:"):
        from ..deploy.zoo import resolve

        return resolve(spec)[0]
    if not spec.startswith("suite:"):
        path = Path(spec).expanduser()
        if not path.exists():
            raise UserError(f"train.init_from={spec}: no such checkpoint file or run folder (give a checkpoint.pt, "
                            "its run folder, zoo:NAME or suite:NAME)")
        return path
    name = spec.removeprefix("suite:")
    source = replace(load_suite(resolve_config(name)), runs_dir=cfg.runs_dir)
    match = next((e for e in source.models if e.name == entry.name), None)
    if match is None:
        raise UserError(f"train.init_from={spec}: suite {name} has no model {entry.name} (it has "
                        f"{', '.join(e.name for e in source.models)})")
    path = run_dir(match, with_seed(source, cfg.train.seed)) / CHECKPOINT
    if not path.is_file():
        raise UserError(f"train.init_from={spec}: no checkpoint of {entry.name} seed {cfg.train.seed} at {path}; "
                        f"run `ocrbench run {name} --seeds {cfg.train.seed + 1}` first (same --out), or give a "
                        "checkpoint file")
    return path


def initialise(model, entry: ModelEntry, cfg: SuiteConfig) -> dict:
    """Load ``train.init_from``'s weights into a fresh model (output rows mapped by character); what the record
    says about it. Empty for a model trained from scratch."""
    path = init_checkpoint(entry, cfg)
    if path is None:
        return {"init_from": ""}
    from ..harness.transfer import load_init_weights

    return {"init_from": init_spec(entry, cfg), **load_init_weights(model, path)}


def _train_entry(entry: ModelEntry, cfg: SuiteConfig, base: dict, resume: bool, progress: bool, validate=None,
                 callbacks: Sequence[Callback] = ()):
    """Datasets, a fresh model, its run folder (with the resolved config) and training: what every task shares.
    ``validate(model, val_set) -> CER`` gives the validation curve."""
    model, train_set = prepare_model(entry.name, entry.kwargs, cfg)
    init = initialise(model, entry, cfg)  # a resumed run's checkpoint overwrites these weights anyway
    test_set = create_dataset(cfg.data.name, cfg.eval_split, cfg.data)
    for split, dataset in (("train", train_set), (cfg.eval_split, test_set)):
        warn_replaced(dataset, f"{cfg.data.name} {split} split")
    out = run_dir(entry, cfg)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(to_dict(replace(cfg, models=(entry,))), sort_keys=False))
    val = None
    if validate is not None:
        val_set = create_dataset(cfg.data.name, "val", cfg.data)
        val = lambda: validate(model, val_set)  # noqa: E731
    callbacks = [*observers(cfg, out, train_set), *callbacks]
    result = train(model, train_set, cfg.train, out, config_hash=base["config_hash"], resume=resume,
                   progress=progress, validate=val, callbacks=callbacks)
    return TrainedRun(model, train_set, test_set, result, out, {**init, **data_fields(model, train_set, cfg)})


@dataclass
class TrainedRun:
    """What training one entry leaves for its evaluation: the model, its data, the result and record fields."""
    model: Any
    train_set: Any
    test_set: Any
    result: Any
    out: Path
    fields: dict


def data_fields(model, train_set, cfg: SuiteConfig) -> dict:
    """What a record says about the training data: how many lines, and the charset the model was built with."""
    fields = {"train_lines": len(train_set), "train_lines_budget": cfg.data.train_lines,
              "charset": model.charset.chars} if model.task == "recognition" else {}
    # what tells apart the rows of an ablation over generator options or augmentation policies
    fields |= {"data_options": dict(cfg.data.options),
               "augmentation": cfg.train.augmentation if cfg.train.augment else "none"}
    rule = getattr(train_set, "charset_rule", "")
    return {**fields, "charset_rule": rule} if rule else fields


def observers(cfg: SuiteConfig, out: Path, train_set) -> list[Callback]:
    """The callbacks ``cfg.observe`` asks for (created before training, so a missing extra fails first).
    Feature maps are of the first 3 training lines: fixed, and they exist for every dataset."""
    found: list[Callback] = []
    if cfg.observe.tensorboard:
        from ..diagnostics.tensorboard import TENSORBOARD_DIR, TensorBoardCallback

        found.append(TensorBoardCallback(out / TENSORBOARD_DIR))
    if cfg.observe.features_layer:
        from ..diagnostics.features import FEATURE_HISTORY, FeatureMapRecorder

        lines = [train_set[i] for i in range(min(3, len(train_set)))]
        found.append(FeatureMapRecorder(lines, cfg.observe.features_layer, cfg.observe.features_every,
                                        out / FEATURE_HISTORY))
    return found


def _training_fields(run: TrainedRun) -> dict:
    """What a record says about training: budget used, speed, curve, time to the validation CER targets."""
    model, result, out = run.model, run.result, run.out
    return {"params": model.num_params(), "steps": result.steps, "truncated": result.truncated,
            "train_seconds": round(result.seconds, 2), "train_lines_per_s": round(result.lines_per_second, 2),
            "data_wait_share": round(result.data_wait_share, 4), "padding_share": _rounded(result.padding_share),
            "final_loss": result.final_loss, "resumed_from_step": result.resumed_from,
            "val_curve": result.val_curve, "time_to_cer": result.time_to_targets(),
            "train_curve": result.history,  # (step, loss, lr) every HISTORY_EVERY steps
            "checkpoint": str(out / "checkpoint.pt"), **run.fields}


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _val_cer(cfg: SuiteConfig):
    def validate(model, val_set) -> float:
        return evaluate(model, val_set, batch_size=cfg.train.eval_batch_size, device=cfg.train.device,
                        precision=cfg.train.precision).cer
    return validate


def _train_and_evaluate(entry: ModelEntry, cfg: SuiteConfig, base: dict, resume: bool, progress: bool, todo=None,
                        callbacks: Sequence[Callback] = (), sink: Sink | None = None):
    run = _train_entry(entry, cfg, base, resume, progress, _val_cer(cfg), callbacks)
    model, train_set, test_set, result = run.model, run.train_set, run.test_set, run.result
    todo = expected_rows(entry, cfg) if todo is None else todo
    common = {**base, "status": "ok", "task": "recognition", **_training_fields(run),
              **skipped_data(train_set, test_set)}
    log = (lambda msg: print(msg, file=sys.stderr)) if progress else None  # stdout may carry --json
    decoders = [d for d in entry.decoders if any(t[0] == d for t in todo)]
    decodings = make_decodings(model, decoders, lm_config(cfg, train_set), cfg.train.device, log)
    for name, dataset in _evaluation_sets(cfg, test_set):
        for decoder in decoders:
            if (decoder, decoder_hash(decoder, cfg.lm), name) not in todo:
                continue
            ev = evaluate(model, dataset, decodings[decoder], batch_size=cfg.train.eval_batch_size,
                          device=cfg.train.device, precision=cfg.train.precision, progress=progress)
            yield {**common, **ev.as_dict(), "dataset": name,
                   "split": cfg.eval_split if name == cfg.data.name else "test",
                   "decoder_hash": decoder_hash(decoder, cfg.lm), "data_version": getattr(dataset, "version", ""),
                   **_image_source(dataset), **decoding_fields(decodings[decoder]),
                   "examples": quotable_examples(name, ev.examples), **_references_fit(model, dataset, name, cfg)}
    if cfg.profile and result.resumed_from < result.steps:  # plan_suite asks it of the first seed only
        _profile(entry, cfg, base, model.charset, sink)


def quotable_examples(dataset: str, examples: list[dict]) -> list[dict]:
    """The (reference, hypothesis) examples a result row may keep: those of data ocrbench generates. A
    downloaded or user collection's lines stay on the user's disk (rows are committed as references; `ocrbench
    errors` shows any collection's lines locally)."""
    return examples if dataset_info(dataset).generated else []


def _references_fit(model, dataset, name: str, cfg: SuiteConfig) -> dict:
    """What stops a model from writing a reference at all, counted per evaluation set: lines longer than its
    output cap (an autoregressive decoder's ``max_output_length``, never a silent cut) and, on another
    collection, characters its charset lacks."""
    texts = [dataset[i].text for i in range(len(dataset))]
    cap = model.max_output_length
    fit = {"max_output_length": cap, "references_over_cap": sum(len(t) > cap for t in texts)} if cap else {}
    return {**fit, **_charset_coverage(model, texts)} if name != cfg.data.name else fit


def _charset_coverage(model, texts: list[str]) -> dict:
    """The reference characters the model's charset lacks, counted, and the share it can produce at all."""
    missing = missing_characters(model.charset, texts)
    total = sum(len(t) for t in texts)
    return {"charset_missing": missing, "charset_coverage": round(1 - sum(missing.values()) / max(total, 1), 4)}


def lm_config(cfg: SuiteConfig, train_set) -> LMConfig:
    """``cfg.lm``, with ``corpus: train-split`` turned into a text file of the training transcriptions, scored
    after training on one of the validation transcriptions (cached by content, so the LM cache keys on the
    text; the score is each beam+lm row's ``lm_bpc_val``)."""
    if cfg.lm.corpus != TRAIN_SPLIT_CORPUS:
        return cfg.lm
    corpus = transcriptions_file(train_set, cfg)
    held_out = cfg.lm.held_out or str(transcriptions_file(create_dataset(cfg.data.name, "val", cfg.data), cfg,
                                                          name="val"))
    return replace(cfg.lm, corpus=str(corpus), held_out=held_out)


def suite_lm(cfg: SuiteConfig) -> tuple[LMConfig, str | None]:
    """The suite's LM settings as its runs use them (:func:`lm_config`) and the characters of its models
    (their training split's charset) where ``corpus: train-split`` makes the LM of the training data; the
    split is read only then. None for the characters otherwise: those of the model the LM serves."""
    if cfg.lm.corpus != TRAIN_SPLIT_CORPUS:
        return cfg.lm, None
    train_set = create_dataset(cfg.data.name, "train", cfg.data)
    return lm_config(cfg, train_set), dataset_charset(train_set).chars


def transcriptions_file(dataset, cfg: SuiteConfig, name: str = "") -> Path:
    """A dataset's transcriptions, a line each, in a file named by their content (``<digest>.txt``), or
    ``<digest>/<name>.txt`` where the file name is the key of a record's LM score (``lm_bpc_val``)."""
    text = "".join(f"{dataset[i].text}\n" for i in range(len(dataset)))
    digest = stable_digest(text).hex()[:16]
    path = cache_home(cfg.data.cache_dir) / "lm" / "text" / (f"{digest}/{name}.txt" if name else f"{digest}.txt")
    if not path.is_file():
        atomic_write_text(path, text)
    return path


TRAIN_SPLIT_CORPUS = "train-split"


def _image_source(dataset) -> dict:
    """Where a downloaded collection's images came from (originals or a mirror's reduced copies): the lines'
    version is the same for both, so the record says which pixels were read."""
    source = getattr(dataset, "image_source", "")
    return {"image_source": source} if source else {}


def _evaluation_sets(cfg: SuiteConfig, test_set):
    """The suite's test split, then each evaluation set's test split at the suite's line height."""
    yield cfg.data.name, test_set
    for name in cfg.eval_sets:
        yield name, evaluation_set(cfg, name)


# options of an evaluation set given as a folder (``alto:PATH``, ``pagexml:PATH``): every line, its text as written
FOLDER_EVAL_OPTIONS = {"line_types": "all", "charset": "all"}


def evaluation_set(cfg: SuiteConfig, name: str):
    """The test split of evaluation set ``name`` at the suite's line height, with its own root and options (a page
    folder: every line, nothing mapped, so what the model cannot write counts as errors and is reported)."""
    options = FOLDER_EVAL_OPTIONS if split_name(name)[0] in ("alto", "pagexml") else {}
    return create_dataset(name, "test", replace(cfg.data, name=name, root=None, options=options, train_lines=None))


def skip_missing_eval_sets(cfg: SuiteConfig, log=print) -> SuiteConfig:
    """``cfg`` without the evaluation sets whose data is not downloaded: one line each now, and a note in the
    results folder that the leaderboard shows where their column would be. Their rows are owed again (and
    evaluated from the finished checkpoints) by the first run after the download."""
    missing = {}
    for name in cfg.eval_sets:
        try:
            evaluation_set(cfg, name)
        except NotDownloaded as e:
            missing[name] = e.command
            log(f"[{cfg.name}] evaluation set {name} skipped: not downloaded; run `{e.command}`, then rerun to "
                "add its rows")
    note = cfg.results_path / NOT_DOWNLOADED_FILE
    if missing:
        atomic_write_text(note, json.dumps(missing, indent=1) + "\n")
    elif note.exists():
        note.unlink()
    return replace(cfg, eval_sets=tuple(n for n in cfg.eval_sets if n not in missing))


def _profile(entry: ModelEntry, cfg: SuiteConfig, base: dict, charset: Charset, sink: Sink | None = None) -> None:
    """Write the model's profile rows (a fresh instance at the reference shape) to ``profiles.jsonl`` through
    ``sink`` (default: appended under ``cfg.results_path``); a profiling failure is recorded in a row, never
    raised: the trained model's record stands."""
    from ..profile import PROFILES_FILE, suite_profile

    try:
        rows = suite_profile(entry.name, cfg.train, cfg.data.height, charset=charset, model_kwargs=dict(entry.kwargs))
    except Exception as e:
        rows = [{"kind": "profile", "model": entry.name, "status": "error", "error": f"{type(e).__name__}: {e}"}]
    sink = sink or file_sink(cfg.results_path)
    for row in rows:
        sink(PROFILES_FILE, {**row, "suite": cfg.name, "dataset": cfg.data.name, "config_hash": base["config_hash"],
                             "run_id": base["run_id"]})


def _train_and_evaluate_detector(entry: ModelEntry, cfg: SuiteConfig, base: dict, resume: bool, progress: bool,
                                 todo=None, callbacks: Sequence[Callback] = (), sink: Sink | None = None):
    """A text-line detector: trained with the same recipe on a page dataset, scored with detection metrics
    (see ocrbench.pipeline.evaluate_detector); one record with ``task: detection``."""
    from ..datasets import dataset_info
    from ..pipeline import detector_cost, evaluate_detector

    if dataset_info(cfg.data.name).task != "pages":
        raise UserError(f"{entry.name} is a text-line detector and needs a page dataset, not {cfg.data.name!r}: "
                        "e.g. --dataset synth-pages --set data.height=384 --set data.train_size=300 "
                        "--set data.test_size=50 (or a suite entry with data: {name: synth-pages, ...})")
    run = _train_entry(entry, cfg, base, resume, progress, callbacks=callbacks)
    model, test_set = run.model, run.test_set
    ev = evaluate_detector(model, test_set, batch_size=cfg.train.eval_batch_size, device=cfg.train.device,
                           precision=cfg.train.precision, progress=progress)
    training = _training_fields(run)
    training["train_pages_per_s"] = training.pop("train_lines_per_s")
    return [{**base, "status": "ok", "task": "detection", **training, **ev,
             **detector_cost(model, test_set, cfg.train.batch_size, cfg.train.device, cfg.train.precision)}]


# task -> fn(entry, cfg, base_record, resume, progress, todo, callbacks, sink=None) -> run records, in the order
# they are finished (a generator may yield each as soon as it is evaluated); ``sink`` takes any other records
# (profile rows). Other tasks add theirs here.
TASK_RUNNERS = {"recognition": _train_and_evaluate, "detection": _train_and_evaluate_detector}


def check_writable(folder: Path) -> None:
    """A results folder that cannot be written is a one-line error now, not a lost record after training."""
    records_check_writable(folder, "results", "choose another --results")


def check_job_folders(cfg: SuiteConfig) -> None:
    """Where a job writes besides its results (checkpoints, the data cache): one line now, not a failed row
    after the data has loaded."""
    records_check_writable(Path(cfg.runs_dir), "checkpoints", "choose another --out (runs_dir)")
    records_check_writable(cache_home(cfg.data.cache_dir), "the data cache",
                           "point OCRBENCH_CACHE (or data.cache_dir) at a writable folder")


LOCK_FILE = ".ocrbench.lock"


@contextmanager
def results_lock(folder: Path):
    """Hold the results folder for a whole run, so two runs on it cannot both write every row: the second is
    refused in one line naming the holder. An ``flock``: the kernel releases it when the holder dies."""
    check_writable(folder)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"results folder {folder} is in use by another ocrbench run (pid {holder}); wait for "
                            "it to finish or choose another --results") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def only_models(cfg: SuiteConfig, names: Sequence[str] | None) -> SuiteConfig:
    """``cfg`` with only the entries of the models ``names`` (all of it for ``None``); a name the suite does not
    list is a :class:`UserError` that lists the ones it does."""
    if not names:
        return cfg
    listed = list(dict.fromkeys(e.name for e in cfg.models))
    unknown = [n for n in names if n not in listed]
    if unknown:
        raise UserError(f"suite {cfg.name} has no model {', '.join(unknown)}; it lists {', '.join(listed)}")
    return replace(cfg, models=tuple(e for e in cfg.models if e.name in names))


def run_suite(cfg: SuiteConfig, resume: bool = True, progress: bool = True, log=print,
              executor: Executor | None = None) -> list[RunOutcome]:
    """Run every (model, seed) job of ``cfg``; with ``resume``, rows already recorded are not produced again.
    ``executor`` runs the jobs (default :func:`run_jobs`: here, one after the other)."""
    cfg = skip_missing_eval_sets(cfg, log)
    return (executor or run_jobs)(plan_suite(cfg, resume), resume, progress, log)


def check_decoders(entry: ModelEntry, cfg: SuiteConfig) -> None:
    """An unknown model, or a decoder the model does not have (``ctc`` needs a CTC head), is one line before
    any training, not a failed row after it."""
    if model_task(entry.name) != "recognition":
        return
    try:
        decoders = create_model(entry.name, input_height=cfg.data.height, **entry.kwargs).decoders
    except Exception:  # a model that does not build fails as its job does: a failed row, the suite goes on
        return
    if missing := [d for d in entry.decoders if d not in decoders]:
        raise UserError(unknown_decoder(entry.name, missing[0], decoders, where=f" (suite {cfg.name!r})"))


def check_zoo_start(entry: ModelEntry, cfg: SuiteConfig) -> None:
    """A ``zoo:`` start the zoo does not list (a model added to a copy of the real suite has no pretrain
    checkpoint there) is one line before any training, with the ways out."""
    spec = init_spec(entry, for_model(entry, cfg))
    if not spec.startswith("zoo:"):
        return
    from ..deploy.zoo import load_index

    if spec.removeprefix("zoo:") not in load_index():
        raise UserError(f"train.init_from={spec}: the zoo has no such checkpoint (`ocrbench zoo` lists them): train "
                        f"{entry.name} from scratch (--set train.init_from=), or pretrain it first (`ocrbench run "
                        f"pretrain --models {entry.name}`, then train.init_from=suite:pretrain)")


def plan_suite(cfg: SuiteConfig, resume: bool = True) -> list[Job]:
    """Every (model, seed) job of ``cfg``, seed-major (an interrupted suite has every model at the first seed),
    each with the rows it still owes: with ``resume``, those not yet recorded as ``ok``; else all."""
    if not cfg.models:
        raise UserError(f"suite {cfg.name!r} lists no models")
    for entry in cfg.models:  # fail fast on a typo before hours of training
        check_decoders(entry, cfg)
        check_zoo_start(entry, cfg)
    done = recorded_rows(cfg.results_path, cfg.train.max_minutes) if resume else {}
    jobs = []
    for seed in cfg.seed_list:
        for entry in cfg.models:
            # the cost does not depend on the seed: profiled once per model (profile is no part of the run hash)
            job = replace(with_seed(cfg, seed), profile=cfg.profile and seed == cfg.seed_list[0])
            todo = expected_rows(entry, job) - done.get(run_hash(entry, job), set())
            jobs.append(Job(entry, job, frozenset(todo)))
    return jobs


def run_jobs(jobs: Sequence[Job], resume: bool = True, progress: bool = True, log=print) -> list[RunOutcome]:
    """The in-process executor: each job in turn, its rows appended as each is evaluated."""
    outcomes, t0 = [], time.perf_counter()
    for job in jobs:
        if not job.todo:
            outcomes.append(skip_job(job, log))
            continue
        outcome = run_model(job.entry, job.cfg, resume=resume, progress=progress, todo=set(job.todo))
        log_outcome(log, job, outcome, t0)
        outcomes.append(outcome)
    return outcomes


def skip_job(job: Job, log) -> RunOutcome:
    log(f"{job.tag}: already recorded, skipped")
    return RunOutcome(job.entry.name, "skipped", [], job.seed)


def log_outcome(log, job: Job, outcome: RunOutcome, t0: float) -> None:
    """The one line a finished job gets, with the time since the suite started (``t0``, perf_counter)."""
    log(f"{job.tag}: {summary_line(outcome)}  [{time.perf_counter() - t0:.0f}s elapsed]")


def summary_line(outcome: RunOutcome) -> str:
    first = outcome.records[0] if outcome.records else {}
    if outcome.status != "ok":
        return f"failed  {first.get('error')}"
    mark = " TRUNCATED by max_minutes" if first.get("truncated") else ""
    if "cer" in first:
        return f"ok  CER {first['cer']:.4f}  WER {first['wer']:.4f}  ({first['steps']} steps, {first['train_seconds']:.0f}s train){mark}"
    if "ap50" in first:
        return (f"ok  AP@0.5 {first['ap50']:.3f}  AP@[.5:.95] {first['ap']:.3f}  F1 {first['f1']:.3f}  "
                f"({first['steps']} steps, {first['train_seconds']:.0f}s train){mark}")
    return "ok"
