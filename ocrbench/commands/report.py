"""ocrbench report: leaderboards (Markdown, CSV, JSON, PNG) from runs.jsonl, and comparisons of two result folders."""

from __future__ import annotations

from ..errors import UserError
from ..report.leaderboard import compare_folders, compare_markdown, write_combined_report, write_report
from .common import add_json

DEFAULT_RESULTS = "results/quick"


def register(sub) -> None:
    p = sub.add_parser("report", help="write the leaderboard from the run records, or compare two result folders")
    p.add_argument("--results", action="append", metavar="FOLDER",
                   help=f"folder holding runs.jsonl (default {DEFAULT_RESULTS}); give it several times for one "
                   "leaderboard of several folders: the real-handwriting track first, then the synthetic one")
    p.add_argument("--out", metavar="FOLDER",
                   help="with several --results: where the joint leaderboard goes (default the first folder)")
    p.add_argument("--compare", metavar="OTHER",
                   help="print the CER delta table of --results (new) against OTHER (reference) instead")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="with --compare: absolute CER added to the allowed margin (e.g. across machines)")
    p.add_argument("--no-plot", action="store_true")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    folders = list(dict.fromkeys(args.results or [DEFAULT_RESULTS]))  # a folder given twice counts once
    if args.compare:
        if len(folders) > 1:
            raise UserError("--compare takes one --results folder (the new one); got " + ", ".join(folders))
        delta = compare_folders(folders[0], args.compare, args.tolerance)
        words = {"same": "no significant change"}
        md = compare_markdown(delta, folders[0], args.compare, words)
        worse = delta[delta["verdict"] == "worse"] if not delta.empty else delta
        return {"rows": delta.to_dict(orient="records"), "text": md, "failed": not worse.empty}
    if len(folders) > 1:
        written = write_combined_report(folders, args.out, plot=not args.no_plot)
    elif args.out:
        raise UserError("--out is for several --results folders; one folder's leaderboard is written into it")
    else:
        written = write_report(folders[0], plot=not args.no_plot)
    return {"written": written, "text": "\n".join(f"wrote {p}" for p in written.values())}
