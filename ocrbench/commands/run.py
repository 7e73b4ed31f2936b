"""ocrbench run [CONFIG]: a whole suite (default: the quick suite), its leaderboard, and a reproduction check
against the committed reference results of the same suite."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from ..bench.suite import only_models, results_lock, run_suite
from ..errors import UserError
from ..harness import distributed
from ..records import RUNS_FILE, atomic_write_text
from ..report.leaderboard import compare_folders, compare_markdown, write_report
from .common import add_executor_options, add_json, add_overrides, executor_from_args, suite_from_args


def register(sub) -> None:
    p = sub.add_parser("run", help="train and evaluate every model of a suite, then write the leaderboard")
    p.add_argument("config", nargs="?", default="quick",
                   help="suite YAML path or shipped name: quick (default, CPU, ~15 min), ci, gpu, standard")
    p.add_argument("--seeds", type=int, help="train every model with this many seeds (default: the suite's)")
    p.add_argument("--results", help="folder for runs.jsonl and the leaderboard (default: local/<suite>)")
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="run only these models of the suite (each of their entries; the rest stay as recorded)")
    p.add_argument("--no-resume", action="store_true", help="rerun models already recorded")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_options(p)
    add_overrides(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    if distributed.env_world_size() > 1:  # every rank would run the whole suite and append its own rows
        raise UserError("only `ocrbench train` runs under torchrun (one model, data-parallel); run a suite's "
                        "jobs in parallel with `ocrbench run --executor ray`")
    cfg = only_models(suite_from_args(args.config, args.overrides, {"seeds": args.seeds, "results_dir": args.results}),
                      args.models)
    executor = executor_from_args(args)
    t0 = time.perf_counter()
    log = (lambda *_: None) if args.json else partial(print, flush=True)  # a log file sees each model at once
    with results_lock(cfg.results_path):  # a second run on the folder is refused, not a second copy of every row
        outcomes = run_suite(cfg, resume=not args.no_resume, progress=not args.quiet, log=log, executor=executor)
        written = write_report(cfg.results_path)
    seconds = time.perf_counter() - t0
    failed = sorted({o.model for o in outcomes if o.status == "failed"})
    text = [f"suite {cfg.name} done in {seconds / 60:.1f} min; leaderboard: {written['markdown']}"]
    repro = reproduction(cfg.results_path, cfg.reference_path)
    if repro:
        text += ["", repro["markdown"], "", f"(written to {repro['path']})"]
    return {"suite": cfg.name, "seconds": round(seconds, 1), "failed_models": failed,
            "runs": [{"model": o.model, "seed": o.seed, "status": o.status} for o in outcomes], "report": written,
            "reproduction": repro.get("rows") if repro else None, "text": "\n".join(text), "failed": bool(failed)}


def reproduction(local: Path, reference: Path) -> dict:
    """The local results beside the committed reference: ``{}`` when there is no reference (or they are one)."""
    if not (reference / RUNS_FILE).is_file() or local.resolve() == reference.resolve():
        return {}
    delta = compare_folders(local, reference)
    if delta.empty:
        return {}
    delta = delta[delta["verdict"] != "only in reference"]  # a partial local run is not a failed reproduction
    md = (f"## Reproduction check: {local} against the reference {reference}\n\n"
          "`reproduced`: the local mean CER lies within the 95% interval of the difference of means (the "
          "reference's seed spread; one run on each side must agree to 4 decimals).\n\n"
          + compare_markdown(delta, "local", "reference"))
    path = local / "reproduction.md"
    atomic_write_text(path, md + "\n")
    return {"markdown": md, "path": str(path), "rows": delta.to_dict(orient="records")}
