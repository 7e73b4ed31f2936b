"""ocrbench report: leaderboards (Markdown, CSV, JSON, PNG) from results/runs.jsonl."""

from __future__ import annotations

from ..report import write_report
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("report", help="write the leaderboard from the run records")
    p.add_argument("--results", default="results", help="folder holding runs.jsonl (default results/)")
    p.add_argument("--no-plot", action="store_true")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    written = write_report(args.results, plot=not args.no_plot)
    return {"written": written, "text": "\n".join(f"wrote {p}" for p in written.values())}
