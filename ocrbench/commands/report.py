"""ocrbench report: leaderboards (Markdown, CSV, JSON, PNG) from runs.jsonl, and comparisons of two result folders."""

from __future__ import annotations

from ..report.leaderboard import compare_folders, compare_markdown, write_report
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("report", help="write the leaderboard from the run records, or compare two result folders")
    p.add_argument("--results", default="results/quick", help="folder holding runs.jsonl (default results/quick)")
    p.add_argument("--compare", metavar="OTHER",
                   help="print the CER delta table of --results (new) against OTHER (reference) instead")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="with --compare: absolute CER added to the allowed margin (e.g. across machines)")
    p.add_argument("--no-plot", action="store_true")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    if args.compare:
        delta = compare_folders(args.results, args.compare, args.tolerance)
        words = {"same": "no significant change"}
        md = compare_markdown(delta, args.results, args.compare, words)
        worse = delta[delta["verdict"] == "worse"] if not delta.empty else delta
        return {"rows": delta.to_dict(orient="records"), "text": md, "failed": not worse.empty}
    written = write_report(args.results, plot=not args.no_plot)
    return {"written": written, "text": "\n".join(f"wrote {p}" for p in written.values())}
