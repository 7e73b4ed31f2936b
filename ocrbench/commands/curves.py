"""ocrbench curves: training loss, learning rate and validation CER per step of recorded runs, to PNG."""

from __future__ import annotations

from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("curves", help="plot loss, learning rate and validation CER per step of recorded runs")
    p.add_argument("--results", action="append", required=True, metavar="DIR",
                   help="results folder with runs.jsonl (repeatable: runs of several folders on one plot)")
    p.add_argument("--model", nargs="+", action="extend", metavar="M", help="only these models (default: all)")
    p.add_argument("--out", default="curves.png", help="PNG path (default curves.png)")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    from ..diagnostics.curves import load_curves, plot_curves

    curves = load_curves(args.results, args.model)
    path = plot_curves(curves, args.out, title=f"training curves: {', '.join(args.results)}")
    runs = [{"label": c.label, "model": c.model, "seed": c.seed, "config_hash": c.config_hash,
             "train_points": len(c.steps), "val_points": len(c.val_steps),
             "final_val_cer": c.val_cer[-1] if c.val_cer else None} for c in curves]
    no_train = sum(1 for c in curves if not c.steps)
    note = f" ({no_train} without a train_curve: loss and lr not recorded)" if no_train else ""
    return {"path": str(path), "runs": runs, "text": f"wrote {path}: {len(curves)} runs{note}"}
