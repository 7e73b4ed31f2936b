"""ocrbench sanity: the troubleshooting checklist on a fresh model (initial loss, overfitting one batch,
activation statistics and dead units, gradient norms), each check PASS or WARN with its reason."""

from __future__ import annotations

import json
from pathlib import Path

from ..bench.suite import prepare_model
from ..diagnostics.sanity import (
    OVERFIT_CAP,
    OVERFIT_LINES,
    STEPS,
    activation_table_text,
    checks_text,
    run_sanity,
    sanity_markdown,
)
from ..errors import UserError
from ..models import model_task
from ..records import atomic_write_text
from .common import add_json, add_overrides, suite_from_args

DEFAULT_OUT = Path("local") / "sanity"  # + the model name
DEFAULT_CONFIG = "quick"  # its data is small and cached by `ocrbench run`: the checks take about a minute on a CPU


def register(sub) -> None:
    p = sub.add_parser("sanity", help="automated sanity checks of a fresh model: initial loss, overfit one batch, "
                                      "activation statistics, dead units, gradient norms")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", help="dataset name (default: the config's, synth-lines)")
    p.add_argument("--config", default=DEFAULT_CONFIG,
                   help=f"suite YAML whose data and train sections to use (default {DEFAULT_CONFIG})")
    p.add_argument("--steps", type=int, default=STEPS,
                   help=f"training steps before the second activation probe (default {STEPS}; 0 skips it)")
    p.add_argument("--overfit-lines", type=int, default=OVERFIT_LINES,
                   help=f"lines of the batch to overfit (default {OVERFIT_LINES})")
    p.add_argument("--overfit-cap", type=int, default=OVERFIT_CAP,
                   help=f"most steps to reach CER 0 on them (default {OVERFIT_CAP})")
    p.add_argument("--out", help="report folder (default local/sanity/<model>/)")
    add_overrides(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    check_args(args)
    cfg = suite_from_args(args.config, args.overrides, {"data.name": args.dataset})
    model, train_set = prepare_model(args.model, {}, cfg)
    report = run_sanity(model, train_set, cfg.train, args.steps, args.overfit_lines, args.overfit_cap)
    out = Path(args.out) if args.out else DEFAULT_OUT / args.model
    out.mkdir(parents=True, exist_ok=True)
    result = {"dataset": cfg.data.name, "config": args.config, **report.as_dict()}
    atomic_write_text(out / "sanity.json", json.dumps(result, indent=1, default=str))
    atomic_write_text(out / "sanity.md", sanity_markdown(report))
    lines = [f"{args.model} on {cfg.data.name}: {report.warnings} warning(s) of {len(report.checks)} checks",
             *checks_text(report), "", *activation_table_text(report),
             f"full per-layer table: {out / 'sanity.md'}"]
    return {**result, "report": str(out / "sanity.md"), "text": "\n".join(lines)}


def check_args(args) -> None:
    """User mistakes fail before any data is generated or loaded."""
    task = model_task(args.model)  # an unknown name raises the registry's error, listing the valid names
    if task != "recognition":
        raise UserError(f"{args.model} is a {task} model; `ocrbench sanity` checks line recognizers")
    for name, low in (("steps", 0), ("overfit_lines", 1), ("overfit_cap", 1)):
        if getattr(args, name) < low:
            raise UserError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
