"""ocrbench report: leaderboards (Markdown, CSV, JSON, PNG, and with --html a static web page) from runs.jsonl, and
comparisons of two result folders."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..report.html import SITE_DIR, reproductions, site_dir, write_site
from ..report.leaderboard import (
    compare_folders,
    compare_markdown,
    folder_reports,
    write_combined_reports,
    write_folder_report,
)
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
    p.add_argument("--html", nargs="?", const="", default=None, metavar="FOLDER",
                   help="also write the leaderboard as a static web page (index.html, no server needed) into "
                   "FOLDER (default: leaderboard/ beside leaderboard.md)")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    folders = list(dict.fromkeys(args.results or [DEFAULT_RESULTS]))  # a folder given twice counts once
    if args.compare:
        if args.html is not None:
            raise UserError("--html writes the leaderboard page; --compare prints a delta table instead: use one")
        if len(folders) > 1:
            raise UserError("--compare takes one --results folder (the new one); got " + ", ".join(folders))
        delta = compare_folders(folders[0], args.compare, args.tolerance)
        words = {"same": "no significant change"}
        md = compare_markdown(delta, folders[0], args.compare, words)
        worse = delta[delta["verdict"] == "worse"] if not delta.empty else delta
        return {"rows": delta.to_dict(orient="records"), "text": md, "failed": not worse.empty}
    if len(folders) == 1 and args.out:
        raise UserError("--out is for several --results folders; one folder's leaderboard is written into it")
    if args.html:
        site_dir(args.html)  # a file in the way fails before anything is written
    reports = folder_reports(folders)
    if len(folders) > 1:
        written = write_combined_reports(reports, args.out, plot=not args.no_plot)
    else:
        written = write_folder_report(reports[0], plot=not args.no_plot)
    if args.html is not None:
        html = args.html or Path(written["markdown"]).parent / SITE_DIR
        written.update(write_site(reports, html, plots=written, comparisons=reproductions(reports)))
    return {"written": written, "text": "\n".join(f"wrote {p}" for p in written.values())}
