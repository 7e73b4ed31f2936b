"""Typed configuration: code defaults → YAML file → CLI overrides → frozen dataclasses.

Every default of a configuration field lives here once (``data.options`` and a model's ``kwargs`` are the
exception by design: each dataset or model defaults its own, beside its code). Unknown or mistyped fields are
errors that name the field and list the valid ones. The resolved configuration is saved beside results and
hashed into every record.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .records import stable_digest

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
BATCHINGS = ("random", "width")
AUGMENTATIONS = ("mild", "htr")  # train.augmentation: the policies of ocrbench.data.augment
LOCAL_RESULTS = "local"  # a user's own results, one folder per suite (git-ignored)
REFERENCE_RESULTS = "results"  # the committed reference results, one folder per suite
CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # the shipped suites and sweeps


class ConfigError(UserError):
    pass


@dataclass(frozen=True)
class DataConfig:
    """Which data, how much of it, and how it is shaped. Shared by every model of a suite."""

    name: str = "synth-lines"
    root: str | None = None  # folder of a user-supplied dataset (IAM, ALTO...), or PATH of ``kind:PATH``
    train_size: int = 20000  # generated datasets only
    val_size: int = 500
    test_size: int = 1000
    seed: int = 0  # the data seed: fixed so that test splits are identical across runs and machines
    height: int = 64  # line images are resized to this height, aspect ratio kept
    oov: str = "error"  # out-of-charset policy: "error" or "replace" (see ocrbench.data.charset)
    skip_bad: bool = False  # skip (and count) unreadable files instead of failing
    cache_dir: str | None = None  # default: $OCRBENCH_CACHE or ~/.cache/ocrbench
    options: Mapping[str, Any] = field(default_factory=dict)  # dataset-specific extras
    # a fixed subset of this many training lines (the first of a permutation seeded by ``seed``; smaller subsets
    # are inside larger ones): the data-efficiency axis of the real track. None: every training line
    train_lines: int | None = None

    def __post_init__(self):
        if self.train_lines is not None and self.train_lines < 1:
            raise ConfigError(f"data.train_lines must be >= 1 (or null for every line), got {self.train_lines}")

    def size_of(self, split: str) -> int:
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}[split]


@dataclass(frozen=True)
class TrainConfig:
    """The fixed, shared training recipe: every model of a suite gets the same one."""

    steps: int = 3000  # the budget: optimizer steps of batch_size lines, the same on every machine
    # a safety limit only: a run still training after max_minutes stops, is recorded as truncated and never
    # ranked (accuracy must not depend on the machine's speed or load); rerun with a higher limit and it
    # finishes from its checkpoint
    max_minutes: float | None = None
    batch_size: int = 16
    lr: float = 1e-3  # peak of the one-cycle schedule
    weight_decay: float = 1e-2
    pct_start: float = 0.15  # fraction of steps spent warming up
    grad_clip: float = 5.0  # max global gradient norm
    precision: str = "fp32"  # fp32, tf32, bf16 or fp16 (autocast; fp16 with gradient scaling)
    device: str = "auto"  # auto = cuda if available, else cpu
    seed: int = 0  # model init, batch order, augmentation
    augment: bool = True  # augment the training lines with the policy train.augmentation names
    # "mild": random horizontal stretch and ink contrast; "htr": also shear, rotation, elastic warp, erosion or
    # dilation and blur, as the HTR best-practice studies train real lines (ocrbench.data.augment)
    augmentation: str = "mild"
    grad_checkpointing: bool = False
    checkpoint_every: int = 200  # steps between checkpoints (resume granularity)
    # DataLoader workers; "auto": none on a CPU (workers would take cores from the model; the loader's share
    # of step time is recorded in every run as data_wait_share), on a GPU enough CPU cores to feed it
    num_workers: int | str = 0
    compile: bool = False  # torch.compile the model for training (numerics differ slightly: part of the identity)
    # deterministic kernels where torch has them (runtime.set_deterministic): a CPU run is bit-reproducible
    # anyway; on a GPU the CTC loss's backward still is not
    deterministic: bool = False
    eval_batch_size: int = 32
    eval_every: int = 0  # steps between validation CERs (the curve and time-to-CER figures); 0: at the end only
    # "random": batches drawn at random (each padded to its widest line); "width": each epoch's lines cut into
    # pools of BUCKET_POOL batches, each pool sorted by width and cut into batches, and the batches shuffled, so a
    # batch holds lines of similar width (real lines vary 10x in width; the padding share is in every record)
    batching: str = "random"
    # initial weights: a checkpoint file, ``zoo:NAME`` (a zoo checkpoint: `ocrbench zoo`), or ``suite:NAME`` (the
    # same model and seed trained by suite NAME, in runs_dir): transfer learning; ``{model}`` in it becomes each
    # entry's model name. Output rows are mapped by character (ocrbench.harness.transfer)
    init_from: str | None = None

    def __post_init__(self):
        if self.augmentation not in AUGMENTATIONS:
            raise ConfigError(f"train.augmentation must be one of {', '.join(AUGMENTATIONS)}, got {self.augmentation!r}")
        if self.batching not in BATCHINGS:
            raise ConfigError(f"train.batching must be one of {', '.join(BATCHINGS)}, got {self.batching!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("steps", "batch_size", "checkpoint_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers != "auto" and (not isinstance(self.num_workers, int) or self.num_workers < 0):
            raise ConfigError(f"train.num_workers must be an integer >= 0 or 'auto', got {self.num_workers!r}")
        for name in ("lr", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"train.{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.weight_decay:
            raise ConfigError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"train.max_minutes must be > 0, got {self.max_minutes}")


@dataclass(frozen=True)
class ObserveConfig:
    """What a run records besides its results: observers only, never part of the run's identity (the hash),
    since they do not change the weights."""

    tensorboard: bool = False  # training curves as TensorBoard events in <run dir>/tensorboard (ocrbench[tensorboard])
    features_layer: str = ""  # a layer name (model.named_modules()): its feature maps of 3 fixed validation lines...
    features_every: int = 100  # ...every this many steps, to <run dir>/feature_history.pt (`ocrbench viz --history`)

    def __post_init__(self):
        if self.features_every < 1:
            raise ConfigError(f"observe.features_every must be >= 1, got {self.features_every}")


@dataclass(frozen=True)
class LMConfig:
    """Beam search and the character language model of the ``beam``, ``joint`` and ``+lm`` decoders (``beam+lm``,
    ``ctc+lm``, ``joint+lm``)."""

    checkpoint: str | None = None  # a trained LM (`ocrbench lm train --out`); default: trained once, cached in <cache>/lm
    # Shallow fusion: score = log p_model + weight · log p_LM (+ ctc_bonus per character for CTC models, whose
    # prefix search has no end-of-line probability to stop the LM from favouring short outputs). Tuned on the
    # synth-lines val split with models of the quick budget (CTC: CER 0.611 -> 0.562; attention: no gain).
    weight: float = 0.1
    # the weight of every CTC prefix search, a CTC model's beam+lm or a hybrid model's ctc+lm (None: ``weight``):
    # it scores peaky frame posteriors and, with its bonus, wants a larger one than an autoregressive decoder
    # (the real track: 0.5 and 0.1 on validation)
    ctc_weight: float | None = None
    ctc_bonus: float = 1.0
    # a hybrid model's joint decoders (joint, joint+lm): the CTC head's share of the score, the attention
    # decoder's being 1 - joint_weight (the LM is added with ``weight``, as in beam+lm). 0.3: ESPnet's usual value
    joint_weight: float = 0.3
    beam_width: int = 5
    # LM size and training: one LSTM layer of 128 units, 2000 steps of 32 random lines (~1.7M characters, under
    # half of the training text) in about a minute on one CPU core. Measured at equal CPU time, this beat 256 units
    # (fewer steps) by ~0.1 bits/char; a GPU suite can afford more (hidden 512, 20000 steps).
    hidden: int = 128
    layers: int = 1
    embed: int = 64
    dropout: float = 0.0  # the quick LM sees under one epoch of the text: it underfits, dropout only slows it
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-2
    max_chars: int = 48  # longest training line, as synth-lines' default max_chars
    # the LM's training text: a vendored corpus (`ocrbench lm corpora`), a UTF-8 text file, or "train-split": the
    # suite's own training transcriptions, scored on its validation transcriptions (a collection in another
    # language, such as the real track's French, needs an LM of its own text)
    corpus: str = "austen-train"
    # text scored after training, its bits per character recorded with every beam+lm row (lm_bpc_<name>): a
    # corpus or a text file; None: the vendored held-out corpora for the vendored text, and for "train-split"
    # the suite's validation transcriptions (lm_bpc_val). Scores only: never part of a decoder's identity.
    held_out: str | None = None
    seed: int = 0
    eval_lines: int | None = None  # held-out lines scored after training (None: all, ~25k lines, seconds)

    def __post_init__(self):
        for name in ("beam_width", "hidden", "layers", "steps", "batch_size", "max_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"lm.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("weight", "ctc_weight"):
            if (getattr(self, name) or 0) < 0:
                raise ConfigError(f"lm.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.joint_weight < 1:
            raise ConfigError(f"lm.joint_weight must be between 0 and 1 (both excluded: 0 is beam, 1 is ctc), got "
                              f"{self.joint_weight}")


@dataclass(frozen=True)
class ModelEntry:
    """A model of a suite: a registry name, constructor overrides and the decoders to evaluate."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    decoders: tuple[str, ...] = ("greedy",)
    # Per-model overrides of the suite's data/train sections, for models of another task (a detector
    # trains on pages: ``data: {name: synth-pages, train_size: 400}``). Recognizers should not need them.
    data: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteConfig:
    name: str = "quick"
    models: tuple[ModelEntry, ...] = ()
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval_split: str = "test"
    # every recognizer is also evaluated (never trained, tuned or selected) on these line datasets' test
    # splits, e.g. the real handwriting of stanford-memorials: how far the training data transfers
    eval_sets: tuple[str, ...] = ()
    seeds: int = 1  # every model is trained with seeds train.seed, train.seed + 1, ... (mean and interval)
    lm: LMConfig = field(default_factory=LMConfig)
    observe: ObserveConfig = field(default_factory=ObserveConfig)
    # where records go: "" = local/<suite name> (git-ignored, the user's own runs); the committed reference
    # of a suite is results/<suite name> (reference_dir), which a run is compared with but never writes to
    results_dir: str = ""
    reference_dir: str = ""
    runs_dir: str = "runs"  # checkpoints and per-run files (not committed)
    # after training, profile each recognizer (MACs, lines/s, memory) into <results>/profiles.jsonl for the
    # leaderboard's cost columns; a few seconds per model on a CPU
    profile: bool = True

    def __post_init__(self):
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")

    @property
    def results_path(self) -> Path:
        return Path(self.results_dir or Path(LOCAL_RESULTS) / self.name)

    @property
    def reference_path(self) -> Path:
        return Path(self.reference_dir or Path(REFERENCE_RESULTS) / self.name)

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(self.train.seed + i for i in range(self.seeds))


def _from_mapping(cls, data: Mapping[str, Any], where: str):
    """Build dataclass ``cls`` from ``data``, rejecting unknown fields with a message naming them."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    valid = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(f"unknown field {where + '.' if where else ''}{unknown[0]} "
                          f"(valid fields: {', '.join(valid)})")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(hints[k], v, f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


def _coerce(hint, value, where: str):
    """Check/convert a YAML value against a field's type hint; the error names the field."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is ModelEntry and isinstance(value, str):
        value = {"name": value}  # a bare model name in a suite's list
    if dataclasses.is_dataclass(hint):
        return _from_mapping(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        members = [a for a in args if a is not type(None)]
        for member in members:  # the first type the value fits (int | str: 2 stays an int)
            try:
                return _coerce(member, value, where)
            except ConfigError:
                continue
        names = " or ".join(getattr(m, "__name__", str(m)) for m in members)
        raise ConfigError(f"{where} must be {names}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        item = args[0]
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping (key: value, e.g. {{max_chars: 20}}), got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint in (int, float, str):
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if hint is float and isinstance(value, str):
            value = _yaml_exponent(value)  # YAML 1.1 reads 5e-4 (no dot) as a string
        if not isinstance(value, hint) or isinstance(value, bool):
            raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
        return value
    return value


def _yaml_exponent(text: str):
    """``"5e-4"`` → 0.0005; any other string is returned unchanged (and rejected by the caller)."""
    try:
        return float(text) if any(c.isdigit() for c in text) else text
    except ValueError:
        return text


def resolve_config(name: str | None) -> Path | None:
    """A config path, or the name of a shipped config (``quick`` → ocrbench/configs/quick.yaml)."""
    if name is None:
        return None
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return CONFIG_DIR / f"{name}.yaml"


def read_yaml(path: str | Path) -> dict:
    """A YAML mapping from a file; a missing file or bad YAML is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file ({e.reason} at byte {e.start}); a config is a YAML file") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a suite config lists at least its models (see "
                          f"{CONFIG_DIR / 'quick.yaml'})")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of sections, got {type(data).__name__}")
    return data


def load_suite(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> SuiteConfig:
    """Read a suite YAML file (or the code defaults) and apply dotted overrides (``train.steps=10``)."""
    data: dict[str, Any] = read_suite_yaml(path) if path is not None else {}
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return _from_mapping(SuiteConfig, data, "")


BASE_KEY = "base"  # a suite file's ``base: NAME`` starts it from suite NAME's sections (one recipe, one place)
NEVER_INHERITED = ("name", "models", "results_dir", "reference_dir")


def read_suite_yaml(path: str | Path, seen: tuple[Path, ...] = ()) -> dict:
    """A suite file's mapping, over its ``base`` suite's (a shipped name or a path) when it names one: sections
    are merged field by field, the file's fields winning; its name and models are its own."""
    data = read_yaml(path)
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    base_path = resolve_config(str(base))
    if base_path.resolve() in seen or Path(path).resolve() == base_path.resolve():
        raise ConfigError(f"{path}: base: {base} makes a cycle of suite files")
    merged = {k: v for k, v in read_suite_yaml(base_path, (*seen, Path(path).resolve())).items()
              if k not in NEVER_INHERITED}
    for key, value in data.items():
        both_mappings = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        merged[key] = {**merged[key], **value} if both_mappings else value
    return merged


def set_dotted(data: dict, key: str, value) -> None:
    """``data["train"]["steps"] = value`` for key ``train.steps``."""
    *parents, last = key.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[last] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``train.steps=10`` → ("train.steps", 10), the value parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override must look like section.field=value, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text}: the value is not valid YAML: {_yaml_problem(e)}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """One line for a YAML error (PyYAML's own message spans several, with a drawing of the spot)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def to_dict(cfg) -> dict:
    def convert(x):
        if dataclasses.is_dataclass(x):
            return {f.name: convert(getattr(x, f.name)) for f in fields(x)}
        if isinstance(x, (list, tuple)):
            return [convert(v) for v in x]
        if isinstance(x, Mapping):
            return {k: convert(v) for k, v in x.items()}
        return x

    return convert(cfg)


def config_hash(*parts) -> str:
    """Short stable hash of configuration objects (dataclasses or plain data)."""
    return stable_digest([to_dict(p) for p in parts]).hex()[:12]


def for_model(entry: ModelEntry, cfg: SuiteConfig) -> SuiteConfig:
    """The suite config as seen by one model: its ``data``/``train`` overrides applied and checked."""
    data = _from_mapping(DataConfig, {**to_dict(cfg.data), **entry.data}, f"models.{entry.name}.data")
    train = _from_mapping(TrainConfig, {**to_dict(cfg.train), **entry.train}, f"models.{entry.name}.train")
    return replace(cfg, data=data, train=train)
