"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import SuiteConfig, load_suite, parse_override
from ..progress import progress_enabled, set_quiet  # noqa: F401  (re-exported for commands)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config field, e.g. --set train.steps=100 (repeatable)")


def resolve_config(name: str | None) -> Path | None:
    """A config path, or the name of a shipped config (``quick`` → ocrbench/configs/quick.yaml)."""
    if name is None:
        return None
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return CONFIG_DIR / f"{name}.yaml"


def suite_from_args(config: str | None, overrides: list[str], extra: dict | None = None) -> SuiteConfig:
    pairs = dict(parse_override(o) for o in overrides)
    path = resolve_config(config)
    if pairs:
        load_suite(path, pairs)  # every --set value is checked, even one a dedicated option then replaces
    pairs.update({k: v for k, v in (extra or {}).items() if v is not None})
    return load_suite(path, pairs)
