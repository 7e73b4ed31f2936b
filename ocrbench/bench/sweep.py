"""Hyperparameter sweeps on Optuna (the optional extra ``ocrbench[sweep]``), tuned coarse to fine.

A sweep tunes one recognizer on a suite's data and recipe. Pass 1 samples every numeric range
log-uniformly (learning rates, widths and batch sizes matter by ratios, not differences); each later pass
narrows every range around the best trial so far (a ``narrow`` fraction of its log-width; of a list of
choices, the best and its neighbours). The sampler is TPE or random. Each pass is an Optuna study in one
SQLite file beside the results, so a rerun continues where the last stopped; a trial the last run left
unfinished is tried again with the same values (its training resumes from its checkpoint).

Each trial is a normal run: trained and evaluated by the suite's own recognizer runner and appended to
``runs.jsonl`` with :mod:`ocrbench.records`, stamped with the sweep, pass, trial number and sampled values.
The objective is the **validation** CER (the test split is never used to choose); trials whose validation
curve is worse than the median of earlier trials at the same step are pruned (MedianPruner) and recorded
with ``status: "pruned"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..config import (
    ConfigError,
    DataConfig,
    ModelEntry,
    SuiteConfig,
    TrainConfig,
    for_model,
    load_suite,
    read_yaml,
    resolve_config,
    set_dotted,
)
from ..errors import UserError
from ..harness.callbacks import Callback
from ..harness.train import TrainingDiverged
from ..models import create_model, model_task
from ..records import RUNS_FILE, append_record
from . import suite

STUDY_FILE = "sweep.db"  # the Optuna storage, beside runs.jsonl
SAMPLERS = ("tpe", "random")
SECTIONS = ("train", "data", "model")  # what a searched name may set: train.lr, data.height, model.hidden


@dataclass(frozen=True)
class Param:
    """One searched value: a numeric range (sampled log-uniformly) or a list of choices."""

    name: str  # "train.lr", "model.hidden"
    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    choices: tuple = ()


@dataclass(frozen=True)
class SweepConfig:
    """The ``sweep:`` section of a sweep file (the rest of the file is a suite: data, train, lm)."""

    model: str
    space: tuple[Param, ...]
    sampler: str = "tpe"
    seed: int = 0
    passes: tuple[int, ...] = (6, 4)  # trials per pass: a coarse pass, then narrower ones
    narrow: float = 0.25  # a later pass searches this fraction of each log-range, centred on the best so far
    prune_startup_trials: int = 2  # MedianPruner: finished trials needed before any trial is pruned
    prune_warmup_steps: int = 0  # and steps a trial has trained before it can be

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sweep.sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if not self.passes or any(n < 1 for n in self.passes):
            raise ConfigError(f"sweep.passes lists the trials of each pass (each >= 1), got {list(self.passes)}")
        if not 0 < self.narrow <= 1:
            raise ConfigError(f"sweep.narrow must be in (0, 1], got {self.narrow}")
        if not self.space:
            raise ConfigError("sweep.space names no parameter to search")


@dataclass
class Sweep:
    name: str
    spec: SweepConfig
    suite: SuiteConfig  # data, recipe and results folder of every trial

    @property
    def results(self) -> Path:
        return self.suite.results_path

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{(self.results / STUDY_FILE).resolve()}"


# ---- reading a sweep file ----

def load_sweep(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Sweep:
    """A sweep file: a ``sweep:`` section, an optional ``base:`` suite (a path or a shipped name such as
    ``quick``) whose data/train/lm sections it starts from, and suite sections overriding those. Dotted
    ``overrides`` (``sweep.passes=[2]``, ``train.steps=20``) apply last."""
    raw = read_yaml(path)
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    sweep_section = raw.pop("sweep", None)
    if not isinstance(sweep_section, Mapping):
        raise ConfigError(f"{path}: a sweep file needs a 'sweep:' section (model, space, passes...)")
    base = raw.pop("base", None)
    name = raw.get("name") or Path(path).stem
    cfg = load_suite(resolve_config(base) if base else None, _dotted(raw))
    # a sweep trains one model with greedy decoding on the validation split: no extra evaluation sets or
    # profiles (they choose nothing), one seed per trial
    cfg = replace(cfg, name=name, models=(), eval_sets=(), profile=False, seeds=1)
    return Sweep(name, _sweep_config(sweep_section), cfg)


def _dotted(raw: Mapping) -> dict:
    """Suite sections as dotted overrides, so a sweep file's ``train: {steps: 300}`` changes one field of its
    base suite's train section instead of replacing the section."""
    out = {}
    for key, value in raw.items():
        if key in ("data", "train", "lm") and isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _sweep_config(section: Mapping) -> SweepConfig:
    section = dict(section)
    valid = [f.name for f in fields(SweepConfig)] + ["pruner"]
    unknown = sorted(set(section) - set(valid))
    if unknown:
        raise ConfigError(f"unknown field sweep.{unknown[0]} (valid fields: {', '.join(valid)})")
    pruner = section.pop("pruner", {}) or {}
    section.update({f"prune_{k}": v for k, v in pruner.items()})
    if "model" not in section:
        raise ConfigError("sweep.model names no model to tune")
    space = tuple(_param(name, spec) for name, spec in (section.pop("space", None) or {}).items())
    passes = section.pop("passes", SweepConfig.passes)
    passes = tuple(passes) if isinstance(passes, (list, tuple)) else (passes,)
    try:
        return SweepConfig(space=space, passes=tuple(int(n) for n in passes), **section)
    except TypeError as e:
        raise ConfigError(f"sweep: {e}") from None


def _param(name: str, spec) -> Param:
    section, _, field_name = name.partition(".")
    if section not in SECTIONS or not field_name:
        raise ConfigError(f"sweep.space.{name}: a searched name is SECTION.FIELD with SECTION one of "
                          f"{', '.join(SECTIONS)} (e.g. train.lr, model.hidden)")
    valid = {"train": TrainConfig, "data": DataConfig}.get(section)
    if valid is not None and field_name not in {f.name for f in fields(valid)}:
        raise ConfigError(f"sweep.space.{name}: {section} has no field {field_name!r} "
                          f"(valid: {', '.join(f.name for f in fields(valid))})")
    if isinstance(spec, (list, tuple)):
        spec = {"choices": list(spec)}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"sweep.space.{name} must be {{low: .., high: ..}} or {{choices: [..]}}, got {spec!r}")
    if "choices" in spec:
        if not spec["choices"]:
            raise ConfigError(f"sweep.space.{name}.choices is empty")
        return Param(name, choices=tuple(spec["choices"]))
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"sweep.space.{name} needs numeric low and high, got {dict(spec)}") from None
    if not 0 < low < high:
        raise ConfigError(f"sweep.space.{name}: a log-uniform range needs 0 < low < high, got {low}..{high}")
    integer = spec.get("type", "int" if isinstance(spec["low"], int) and isinstance(spec["high"], int) else
                       "float") == "int"
    return Param(name, low, high, integer)


# ---- coarse to fine ----

def narrowed(param: Param, best, fraction: float) -> Param:
    """``param`` searched around ``best``: a log-range of ``fraction`` of the original log-width centred on
    ``best`` (shifted, never cut, where it would leave the original range); of sorted numeric choices, the
    best and its neighbours; other choices stay as they are."""
    if param.choices:
        if not all(isinstance(c, (int, float)) for c in param.choices) or best not in param.choices:
            return param
        order = sorted(param.choices)
        i = order.index(best)
        return replace(param, choices=tuple(order[max(0, i - 1): i + 2]))
    lo, hi = math.log(param.low), math.log(param.high)
    half = fraction * (hi - lo) / 2
    centre = min(max(math.log(best), lo + half), hi - half)
    low, high = math.exp(centre - half), math.exp(centre + half)
    if param.integer:
        low, high = math.floor(low), math.ceil(high)
        low, high = max(low, int(param.low)), min(high, int(param.high))
        high = max(high, low + 1)
    return replace(param, low=low, high=high)


def pass_space(spec: SweepConfig, best: Mapping[str, Any] | None) -> tuple[Param, ...]:
    """The space of a pass: the full ranges (pass 1, ``best`` None) or ranges narrowed around ``best``."""
    if best is None:
        return spec.space
    return tuple(narrowed(p, best[p.name], spec.narrow) for p in spec.space)


def _suggest(trial, param: Param):
    if param.choices:
        return trial.suggest_categorical(param.name, list(param.choices))
    if param.integer:
        return trial.suggest_int(param.name, int(param.low), int(param.high), log=True)
    return trial.suggest_float(param.name, param.low, param.high, log=True)


# ---- a trial is a normal run ----

def trial_run(sweep: Sweep, values: Mapping[str, Any]) -> tuple[ModelEntry, SuiteConfig]:
    """The model entry and suite config of one trial's sampled ``values``."""
    kwargs = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("model.")}
    train = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("train.")}
    data = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("data.")}
    cfg = replace(sweep.suite, train=replace(sweep.suite.train, **train), data=replace(sweep.suite.data, **data))
    return ModelEntry(sweep.spec.model, kwargs, ("greedy",)), cfg


class Pruned(Exception):
    """A trial stopped by the pruner, at ``step``, with its curves so far."""

    def __init__(self, step: int, val_curve: list, train_curve: list):
        super().__init__(f"pruned at step {step}")
        self.step, self.val_curve, self.train_curve = step, val_curve, train_curve


class PruningCallback(Callback):
    """Reports each validation CER to the Optuna trial and stops the run when the pruner says so (never at
    the last step: a finished trial is a result)."""

    def __init__(self, trial):
        self.trial = trial

    def on_validate(self, model, state, cer: float) -> None:
        self.trial.report(cer, state.step)
        if state.step < state.total_steps and self.trial.should_prune():
            raise Pruned(state.step, [list(p) for p in state.val_curve], [list(p) for p in state.history])


def run_trial(sweep: Sweep, trial, values: Mapping[str, Any], pass_number: int, progress: bool = False) -> float:
    """Train and evaluate one trial with the suite's recognizer runner, append its records, and return its
    final validation CER. Raises ``optuna.TrialPruned`` for a pruned trial."""
    import optuna

    entry, cfg = trial_run(sweep, values)
    cfg = for_model(entry, cfg)
    base = {**suite.base_record(entry, cfg), "sweep": sweep.name, "sweep_pass": pass_number,
            "trial": trial.number, "trial_values": dict(values)}
    results = cfg.results_path / RUNS_FILE
    try:
        records = _run_recognizer(entry, cfg, base, progress, [PruningCallback(trial)])
    except Pruned as p:
        append_record(results, {**base, "status": "pruned", "steps": p.step, "val_curve": p.val_curve,
                                "train_curve": p.train_curve})
        raise optuna.TrialPruned(str(p)) from None
    except TrainingDiverged as e:
        append_record(results, {**base, "status": "failed", "error": str(e)})
        raise
    for r in records:
        append_record(results, r)
    return float(records[0]["val_curve"][-1][2])


def _run_recognizer(entry: ModelEntry, cfg: SuiteConfig, base: dict, progress: bool, callbacks) -> list[dict]:
    return list(suite.TASK_RUNNERS["recognition"](entry, cfg, base, True, progress, None, callbacks))


# ---- the studies ----

@dataclass
class PassResult:
    number: int
    space: tuple[Param, ...]
    new_trials: int  # run by this call (the rest were found in the study)
    counts: dict  # trial state -> count
    best_value: float | None
    best_values: dict | None


def run_sweep(sweep: Sweep, progress: bool = False, log: Callable[[str], None] = print) -> list[PassResult]:
    """Run (or continue) every pass of ``sweep``; returns one summary per pass."""
    optuna = _optuna()
    _check_model(sweep)
    suite.check_writable(sweep.results)
    if not sweep.suite.train.eval_every:
        log(f"[{sweep.name}] train.eval_every is 0: trials are validated only at the end, so none is pruned")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    results, best = [], None
    for number, n_trials in enumerate(sweep.spec.passes, 1):
        space = pass_space(sweep.spec, best)
        study = _study(sweep, number)
        new = _continue(study, sweep, space, number, n_trials, progress, log)
        results.append(_summary(study, number, space, new))
        best = _best_values(sweep, number)
    return results


def _optuna():
    try:
        import optuna
    except ImportError as e:
        raise UserError(f"sweeps need Optuna: pip install 'ocrbench[sweep]' ({e})") from None
    return optuna


def _check_model(sweep: Sweep) -> None:
    """A wrong model name or constructor argument fails now, not in the first trial."""
    if model_task(sweep.spec.model) != "recognition":
        raise UserError(f"a sweep tunes a recognizer's validation CER; {sweep.spec.model} is not a recognizer")
    kwargs = {p.name.split(".", 1)[1]: (p.choices[0] if p.choices else (int(p.low) if p.integer else p.low))
              for p in sweep.spec.space if p.name.startswith("model.")}
    try:
        create_model(sweep.spec.model, input_height=sweep.suite.data.height, **kwargs)
    except TypeError as e:
        raise UserError(f"sweep.space: {sweep.spec.model} does not take {sorted(kwargs)} ({e})") from None


def _study(sweep: Sweep, number: int):
    import optuna

    spec = sweep.spec
    sweep.results.mkdir(parents=True, exist_ok=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=spec.prune_startup_trials,
                                         n_warmup_steps=spec.prune_warmup_steps)
    return optuna.create_study(study_name=f"{sweep.name}/pass{number}", storage=sweep.storage_url,
                               direction="minimize", pruner=pruner, load_if_exists=True)


def _sampler(spec: SweepConfig, n_trials: int, seed: int):
    import optuna

    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # TPE's default of 10 random start-up trials would make a small pass purely random
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, n_trials // 2))


def _continue(study, sweep: Sweep, space, number: int, n_trials: int, progress: bool, log) -> int:
    """Run the trials of pass ``number`` still missing; returns how many were started."""
    _retry_interrupted(study)
    remaining = n_trials - _done(study)
    if remaining <= 0:
        return 0
    # a fresh seed on every continuation: the same seed would sample the values of the first trials again
    study.sampler = _sampler(sweep.spec, n_trials, sweep.spec.seed + 1000 * number + len(study.trials))
    def objective(trial) -> float:
        values = {p.name: _suggest(trial, p) for p in space}
        return run_trial(sweep, trial, values, number, progress)

    def report(study_, frozen) -> None:
        value = "" if frozen.value is None else f"  val CER {frozen.value:.4f}"
        log(f"[{sweep.name}] pass {number} trial {frozen.number}: {frozen.state.name.lower()}{value}  "
            f"{_short(frozen.params)}")

    study.optimize(objective, n_trials=remaining, catch=(TrainingDiverged,), callbacks=[report])
    return remaining


def _retry_interrupted(study) -> None:
    """A trial left running by a killed sweep is marked failed and queued again with the same values
    (sweeps of one study are run one process at a time)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})


def _done(study) -> int:
    """Finished trials, not counting those interrupted and queued again."""
    retried = {t.user_attrs["retry_of"] for t in study.trials if "retry_of" in t.user_attrs}
    return sum(1 for t in study.trials if t.state.is_finished() and t.number not in retried)


def _best_values(sweep: Sweep, upto: int) -> dict:
    """The sampled values of the best complete trial of passes 1..``upto``."""
    import optuna

    best = None
    for number in range(1, upto + 1):
        for t in _study(sweep, number).get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
            if best is None or t.value < best.value:
                best = t
    if best is None:
        raise UserError(f"sweep {sweep.name}: no trial of passes 1..{upto} completed (all pruned or failed), so "
                        "there is nothing to narrow around; widen the ranges or raise train.steps")
    return dict(best.params)


def _summary(study, number: int, space, new: int) -> PassResult:
    counts: dict = {}
    for t in study.trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    complete = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    best = min(complete, key=lambda t: t.value) if complete else None
    return PassResult(number, space, new, counts, best.value if best else None, dict(best.params) if best else None)


def _short(values: Mapping[str, Any]) -> str:
    return "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def describe_space(space) -> str:
    return ", ".join(f"{p.name} in {list(p.choices)}" if p.choices else
                     f"{p.name} in [{p.low:.3g}, {p.high:.3g}] (log{', int' if p.integer else ''})" for p in space)
