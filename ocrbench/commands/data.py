"""ocrbench data preview|info: look at a dataset."""

from __future__ import annotations

from pathlib import Path

from ..data.registry import DataConfig, create_dataset, dataset_info
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("data", help="inspect datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    pv = dsub.add_parser("preview", help="write a contact sheet PNG of a dataset split")
    pv.add_argument("name")
    pv.add_argument("--split", default="train")
    pv.add_argument("-n", type=int, default=24, help="lines on the sheet")
    pv.add_argument("--out", help="PNG path (default: <name>-<split>.png)")
    add_json(pv)
    pv.set_defaults(handler=handle_preview)
    info = dsub.add_parser("info", help="size, splits, license and citation of a dataset")
    info.add_argument("name")
    add_json(info)
    info.set_defaults(handler=handle_info)


def handle_preview(args) -> dict:
    from ..data.preview import write_contact_sheet

    n = max(args.n, 1)
    cfg = DataConfig(name=args.name, train_size=max(n, 64), val_size=max(n, 64), test_size=max(n, 64))
    dataset = create_dataset(args.name, args.split, cfg)
    out = Path(args.out or f"{args.name.replace(':', '_').replace('/', '_')}-{args.split}.png")
    path = write_contact_sheet(dataset, out, n=min(n, len(dataset)))
    return {"path": str(path), "text": f"wrote {path}"}


def handle_info(args) -> dict:
    info = dataset_info(args.name)
    out = {"name": info.name, "task": info.task, "splits": list(info.splits), "description": info.description,
           "license": info.license, "citation": info.citation, "needs_root": info.needs_root}
    out["text"] = "\n".join(f"{k}: {v}" for k, v in out.items())
    return out
