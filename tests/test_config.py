import pytest

from ocrbench.config import (
    BASE_KEY,
    CONFIG_DIR,
    ConfigError,
    ModelEntry,
    SuiteConfig,
    for_model,
    load_suite,
    parse_override,
    read_suite_yaml,
    resolve_config,
)
from ocrbench.datasets import create_dataset, dataset_info
from ocrbench.errors import NotDownloaded
from ocrbench.models import list_models

SUITES = sorted(p for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("sweep_"))
SWEEPS = sorted(CONFIG_DIR.glob("sweep_*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_shipped_sweeps_load_and_name_a_registered_model(path):
    from ocrbench.bench.sweep import load_sweep

    sweep = load_sweep(path)
    assert sweep.spec.model in list_models() and sweep.spec.space


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_shipped_configs_load_and_name_registered_models(path):
    cfg = load_suite(path)
    assert cfg.models, f"{path.name} lists no models"
    data_configs = {}  # each distinct data section once: a real collection's pages take seconds to read
    for entry in cfg.models:
        assert entry.name in list_models(), f"{path.name}: unknown model {entry.name}"
        resolved = for_model(entry, cfg)  # per-model overrides are valid fields
        data_configs.setdefault(repr(resolved.data), resolved.data)
    for data in data_configs.values():
        if not dataset_info(data.name).needs_root:
            try:
                create_dataset(data.name, "test", data)  # options valid (generation is lazy)
            except NotDownloaded:  # a downloaded collection's options are tested with it (tests/datasets)
                pass


def test_unknown_field_is_named_with_valid_fields():
    with pytest.raises(ConfigError, match=r"unknown field train\.stpes .*steps"):
        load_suite(None, {"train.stpes": 3})
    with pytest.raises(ConfigError, match=r"unknown field data\.heigth"):
        load_suite(None, {"data.heigth": 3})


def test_wrong_type_and_bad_value_name_the_field():
    with pytest.raises(ConfigError, match=r"train\.steps must be int"):
        load_suite(None, {"train.steps": "many"})
    with pytest.raises(ConfigError, match=r"train\.precision"):
        load_suite(None, {"train.precision": "fp8"})
    with pytest.raises(ConfigError, match=r"train\.batch_size must be >= 1"):
        load_suite(None, {"train.batch_size": 0})


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: mine\nmodels: [crnn, {name: line_cnn, kwargs: {fc_dim: 32}}]\ntrain: {steps: 50}\n")
    cfg = load_suite(path, dict([parse_override("train.steps=7"), parse_override("data.height=32")]))
    assert isinstance(cfg, SuiteConfig) and cfg.name == "mine"
    assert cfg.train.steps == 7 and cfg.data.height == 32
    assert cfg.models == (ModelEntry("crnn"), ModelEntry("line_cnn", kwargs={"fc_dim": 32}))


def test_missing_and_invalid_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_suite(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [crnn\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_suite(bad)


def test_per_model_overrides_are_validated():
    cfg = load_suite(None, {"models": [{"name": "crnn", "data": {"height": 48}, "train": {"batch_size": 4}}]})
    resolved = for_model(cfg.models[0], cfg)
    assert resolved.data.height == 48 and resolved.train.batch_size == 4
    bad = load_suite(None, {"models": [{"name": "crnn", "data": {"hieght": 48}}]})
    with pytest.raises(ConfigError, match=r"models\.crnn\.data\.hieght"):
        for_model(bad.models[0], bad)



IDENTITY = {"name", "data.name"}  # what a suite is about is said even where it equals the default


def _restated_defaults(data: dict, cls, where: str = "") -> list[str]:
    """Dotted names of the values in ``data`` equal to the code default of their field in dataclass ``cls``."""
    import dataclasses

    sections = {f.name: f.default_factory for f in dataclasses.fields(cls)
                if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory)}
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    found = []
    for key, value in data.items():
        if key in sections and isinstance(value, dict):
            found += _restated_defaults(value, sections[key], f"{where}{key}.")
        elif (f"{where}{key}" not in IDENTITY and type(value) is type(defaults[key])
              and value == defaults[key]):
            found.append(f"{where}{key}: {value!r}")
    return found


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_shipped_configs_state_only_what_differs_from_the_code_defaults(path):
    """Each default lives in one place, the dataclasses: a suite file that restates one would hide a later
    change of the default (the issue's "YAMLs state only what differs")."""
    from ocrbench.config import read_yaml

    data = read_yaml(path)
    data.pop("models", None)  # entries' per-model overrides are differences by construction
    base = data.pop(BASE_KEY, None)
    if base is not None:  # a value that overrides its base suite's is a difference, even when it is a default
        inherited = read_suite_yaml(resolve_config(base))
        data = {k: {f: v for f, v in section.items() if f not in inherited.get(k, {})}
                if isinstance(section, dict) else section for k, section in data.items()}
    assert _restated_defaults(data, SuiteConfig) == []


def test_the_lm_trains_on_lines_as_long_as_synth_lines_longest():
    """LMConfig.max_chars restates synth-lines' default rather than importing it (the config module must not
    import a dataset): this keeps the two from drifting apart. Changing one changes the LM's identity, so
    change both, on purpose."""
    from ocrbench.config import LMConfig
    from ocrbench.datasets.synth_lines import DEFAULT_OPTIONS

    assert LMConfig().max_chars == DEFAULT_OPTIONS["max_chars"]


def test_a_suite_starts_from_its_base_suite_and_overrides_it_field_by_field(tmp_path):
    (tmp_path / "parent.yaml").write_text("name: parent\nmodels: [crnn_tiny]\neval_sets: [x]\n"
                                          "train: {steps: 7, lr: 0.002}\ndata: {height: 24}\n")
    (tmp_path / "child.yaml").write_text(f"name: child\nbase: {tmp_path / 'parent.yaml'}\nmodels: [line_cnn_tiny]\n"
                                         "train: {steps: 9}\n")
    cfg = load_suite(tmp_path / "child.yaml")
    assert cfg.name == "child" and [e.name for e in cfg.models] == ["line_cnn_tiny"]
    assert (cfg.train.steps, cfg.train.lr, cfg.data.height, cfg.eval_sets) == (9, 0.002, 24, ("x",))


def test_a_cycle_of_base_suites_is_one_line(tmp_path):
    (tmp_path / "a.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\nmodels: [crnn_tiny]\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\nmodels: [crnn_tiny]\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_suite(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: no-such-suite\nmodels: [crnn_tiny]\n")
    with pytest.raises(ConfigError, match="config file not found"):
        load_suite(tmp_path / "c.yaml")
