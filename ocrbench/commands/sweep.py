"""ocrbench sweep CONFIG: tune one recognizer's hyperparameters on Optuna, coarse to fine (ocrbench.bench.sweep)."""

from __future__ import annotations

from functools import partial

from ..config import parse_override
from .common import add_json, add_overrides, resolve_config


def register(sub) -> None:
    p = sub.add_parser("sweep", help="hyperparameter sweep of one model (Optuna; pip install 'ocrbench[sweep]')")
    p.add_argument("config", help="sweep YAML path or shipped name, e.g. sweep_crnn")
    p.add_argument("--sampler", choices=["tpe", "random"], help="override sweep.sampler")
    p.add_argument("--results", help="folder for runs.jsonl and the study sweep.db (default: local/<sweep name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_overrides(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    from ..bench.sweep import describe_space, load_sweep, run_sweep

    overrides = dict(parse_override(o) for o in args.overrides)
    if args.sampler:
        overrides["sweep.sampler"] = args.sampler
    if args.results:
        overrides["results_dir"] = args.results
    sweep = load_sweep(resolve_config(args.config), overrides)
    log = (lambda *_: None) if args.json else partial(print, flush=True)
    passes = run_sweep(sweep, progress=not args.quiet, log=log)
    text = [f"sweep {sweep.name} of {sweep.spec.model} ({sweep.spec.sampler}); study {sweep.results / 'sweep.db'}, "
            f"records {sweep.results / 'runs.jsonl'}"]
    for p in passes:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(p.counts.items()))
        best = f"best val CER {p.best_value:.4f} at {p.best_values}" if p.best_value is not None else "no trial done"
        text += [f"pass {p.number}: {describe_space(p.space)}", f"  {counts} ({p.new_trials} new); {best}"]
    done = [p for p in passes if p.best_value is not None]
    best = min(done, key=lambda p: p.best_value) if done else None
    return {"sweep": sweep.name, "model": sweep.spec.model, "results": str(sweep.results),
            "passes": [{"pass": p.number, "space": describe_space(p.space), "new_trials": p.new_trials,
                        "counts": p.counts, "best_val_cer": p.best_value, "best_values": p.best_values}
                       for p in passes],
            "best_val_cer": best.best_value if best else None, "best_values": best.best_values if best else None,
            "text": "\n".join(text)}
