"""ocrbench ci: the model-regression gate. Trains the ``ci`` suite afresh, writes ``REPORT.md`` (leaderboard,
delta against the committed reference, plot) and fails when a model got worse than its reference by more than
the tolerance, failed, diverged or produced no row."""

from __future__ import annotations

import shutil
import time
from functools import partial
from pathlib import Path

from ..records import atomic_write_text
from ..report import compare_folders, compare_markdown, write_report
from ..suite import run_suite
from .common import add_json, add_overrides, suite_from_args

# Absolute CER by which a model may exceed its reference before the gate fails. The ci suite is deterministic
# on one machine (same config and seed: same CER to the last digit), but another CPU (other SIMD kernels)
# changes the float rounding and so the trajectory; measured spread over seeds 0-2 of the ci suite on the
# reference CPU was at most 0.03, and a model broken on purpose (wrong blank, labels shifted) scores ~1.0.
TOLERANCE = 0.05


def register(sub) -> None:
    p = sub.add_parser("ci", help="train the ci suite afresh and gate on CER regressions against results/ci")
    p.add_argument("--config", default="ci", help="suite (default: ci)")
    p.add_argument("--results", default=None, help="where the fresh run goes (default: local/<suite>)")
    p.add_argument("--reference", default=None, help="committed reference folder (default: results/<suite>)")
    p.add_argument("--report", default=None, help="the Markdown report (default: <reference>/REPORT.md)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help=f"absolute CER a model may exceed its reference by (default {TOLERANCE})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_overrides(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    cfg = suite_from_args(args.config, args.overrides, {"results_dir": args.results, "reference_dir": args.reference})
    if cfg.results_path.exists():  # a regression gate measures this code: never reuse an earlier run
        shutil.rmtree(cfg.results_path)
    t0 = time.perf_counter()
    outcomes = run_suite(cfg, resume=False, progress=not args.quiet, log=partial(print, flush=True))
    minutes = (time.perf_counter() - t0) / 60
    written = write_report(cfg.results_path)
    delta = compare_folders(cfg.results_path, cfg.reference_path, args.tolerance)
    problems = gate_problems(delta, outcomes)
    report = Path(args.report) if args.report else cfg.reference_path / "REPORT.md"
    md = ci_report(cfg.name, minutes, delta, problems, Path(written["markdown"]), written.get("plot"), report,
                   args.tolerance)
    atomic_write_text(report, md)
    verdict = "FAILED: " + "; ".join(problems) if problems else "passed"
    return {"suite": cfg.name, "minutes": round(minutes, 2), "problems": problems, "report": str(report),
            "rows": delta.to_dict(orient="records"), "failed": bool(problems),
            "text": f"{compare_markdown(delta, 'this run', 'reference')}\n\nci gate {verdict} "
                    f"({minutes:.1f} min); report: {report}"}


def gate_problems(delta, outcomes) -> list[str]:
    """Every reason to fail, each naming the model: worse than the reference, failed, or missing."""
    problems = [f"{o.model} (seed {o.seed}) failed: {o.records[0].get('error')}" for o in outcomes
                if o.status == "failed"]
    for _, r in delta.iterrows() if not delta.empty else ():
        name = f"{r['model']} ({r['decoder']})"
        if r["verdict"] == "worse":
            problems.append(f"{name} CER {r['cer']:.4f} vs reference {r['cer_ref']:.4f} "
                            f"(Δ {r['delta']:+.4f} > allowed {r['margin']:.4f})")
        elif r["verdict"] == "only in reference":
            problems.append(f"{name} has no row in this run")
    return problems


def ci_report(suite: str, minutes: float, delta, problems: list[str], leaderboard_md: Path, plot: str | None,
              report: Path, tolerance: float) -> str:
    parts = [f"# ocrbench CI report: suite `{suite}`", "",
             f"**{'FAILED' if problems else 'passed'}** — trained every model afresh in {minutes:.1f} min. A model "
             f"fails the gate when its CER exceeds the committed reference (`results/{suite}`) by more than the "
             f"95% interval of the difference plus a tolerance of {tolerance} CER, or when it fails, diverges or "
             "produces no row.", ""]
    parts += [f"- {p}" for p in problems] + ([""] if problems else [])
    parts += ["## Delta against the reference", "", compare_markdown(delta, "this run", "reference"), ""]
    if plot:
        target = report.parent / "REPORT.png"
        shutil.copyfile(plot, target)
        parts += [f"![leaderboard plot]({target.name})", ""]
    body = leaderboard_md.read_text().split("\n", 1)[1]  # the leaderboard without its title
    parts += ["## Leaderboard of this run", body]
    return "\n".join(parts)
