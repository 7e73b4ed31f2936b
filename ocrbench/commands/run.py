"""ocrbench run [CONFIG]: a whole suite (default: the quick suite), then the leaderboard."""

from __future__ import annotations

import time

from ..report import write_report
from ..suite import run_suite
from .common import add_json, add_overrides, suite_from_args


def register(sub) -> None:
    p = sub.add_parser("run", help="train and evaluate every model of a suite, then write the leaderboard")
    p.add_argument("config", nargs="?", default="quick",
                   help="suite YAML path or shipped name: quick (default, CPU, ~15 min), standard (GPU)")
    p.add_argument("--no-resume", action="store_true", help="rerun models already recorded")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_overrides(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    cfg = suite_from_args(args.config, args.overrides)
    t0 = time.perf_counter()
    log = (lambda *_: None) if args.json else print
    outcomes = run_suite(cfg, resume=not args.no_resume, progress=not args.quiet, log=log)
    written = write_report(cfg.results_dir)
    seconds = time.perf_counter() - t0
    failed = [o.model for o in outcomes if o.status == "failed"]
    return {"suite": cfg.name, "seconds": round(seconds, 1), "failed_models": failed,
            "runs": [{"model": o.model, "status": o.status} for o in outcomes], "report": written,
            "text": f"suite {cfg.name} done in {seconds / 60:.1f} min; leaderboard: {written['markdown']}",
            "failed": bool(failed)}
