"""ocrbench zoo: the reference checkpoints a suite produced (list them; pack a suite's run into zoo files)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("zoo", help="list the reference checkpoints (evaluate one with --checkpoint zoo:NAME)",
                       description="The zoo index lists reference checkpoints: model, suite, seed, score on the "
                                   "suite's test split, data version, file size and sha256, and whether the "
                                   "package ships the file (the synthetic pretraining checkpoints). `ocrbench eval "
                                   "--checkpoint zoo:NAME --zoo-dir DIR` evaluates one from a folder or URL.")
    p.add_argument("action", nargs="?", default="list", choices=["list", "pack"],
                   help="list (default), or pack: write the zoo files of run checkpoints and add them to the index")
    p.add_argument("--index", help="zoo index JSON (default: the package's ocrbench/deploy/zoo_index.json)")
    p.add_argument("--zoo-dir", metavar="DIR|URL", help="list: say which files are in this folder")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="pack: a run's checkpoint.pt or run folder (repeatable)")
    p.add_argument("--results", help="pack: the suite's results folder (runs.jsonl: score, seed, data version)")
    p.add_argument("--out", help="pack: folder to write the zoo files to")
    p.add_argument("--url-base", help="pack: where the files will be published (a release's download URL)")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    from ..deploy import zoo
    from ..deploy.zoo import load_index

    index = Path(args.index) if args.index else zoo.INDEX
    if args.action == "pack":
        return _pack(args, index)
    entries = load_index(index)
    rows = [{**e.__dict__, **_local(e, args.zoo_dir)} for e in entries.values()]
    return {"index": str(index), "checkpoints": rows, "text": format_entries(rows)}


def _local(entry, zoo_dir: str | None) -> dict:
    from ..deploy.zoo import is_packaged

    shipped = {"packaged": is_packaged(entry)}
    if not zoo_dir or "://" in zoo_dir:
        return shipped
    return {**shipped, "present": (Path(zoo_dir) / entry.file).is_file()}


def _pack(args, index: Path) -> dict:
    from ..deploy.zoo import load_index, pack, write_index

    if not (args.checkpoint and args.results and args.out):
        raise UserError("zoo pack needs --checkpoint (one or more), --results and --out")
    entries = load_index(index) if index.is_file() else {}
    packed = [pack(c, args.results, args.out, args.url_base) for c in args.checkpoint]
    entries.update({e.name: e for e in packed})
    write_index(entries, index)
    rows = [{**e.__dict__, **_local(e, None)} for e in packed]
    return {"index": str(index), "checkpoints": rows,
            "text": format_entries(rows) + f"\nwrote {len(packed)} files to {args.out}; index {index}"}


def format_entries(rows: list[dict]) -> str:
    from tabulate import tabulate

    present = any("present" in r for r in rows)
    table = [[r["name"], r["model"], r["suite"], r["seed"], f"{r['metric']} {r['score']:.4f}",
              f"{r['record_score']:.4f}", r["data_version"], f"{r['size'] / 2**20:.1f} MiB", r["sha256"][:12],
              "yes" if r.get("packaged") else "no"] + (["yes" if r.get("present") else "no"] if present else [])
             for r in rows]
    headers = ["name", "model", "suite", "seed", "test score", "suite record", "data version", "size", "sha256",
               "shipped"]
    return tabulate(table, headers=headers + (["in --zoo-dir"] if present else []), tablefmt="github",
                    disable_numparse=True)
