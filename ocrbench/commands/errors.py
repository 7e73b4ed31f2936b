"""ocrbench errors: error analysis of a checkpoint (confusions, CER by length and writer, the worst lines)."""

from __future__ import annotations

from pathlib import Path

from ..datasets import create_dataset
from ..diagnostics.error_analysis import WORST, error_analysis, errors_summary
from ..errors import UserError
from ..harness.evaluate import decoding_fields
from .common import (
    add_checkpoint_eval_options,
    add_json,
    checkpoint_eval_settings,
    progress_enabled,
    resolve_zoo_checkpoint,
)
from .eval import check_decoder, load_recognizer, make_decoding

DEFAULT_OUT = Path("local") / "errors"  # + the checkpoint's folder name (its run) or file stem


def register(sub) -> None:
    p = sub.add_parser("errors", help="error analysis of a checkpoint: confusions, CER by length and writer, "
                                      "a contact sheet of the worst lines")
    add_checkpoint_eval_options(p)
    p.add_argument("--worst", type=int, default=WORST, help=f"lines on the contact sheet (default {WORST})")
    p.add_argument("--out", help="output folder (default local/errors/<run or checkpoint stem>/)")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    if args.worst < 0:
        raise UserError(f"--worst must be >= 0, got {args.worst}")
    resolve_zoo_checkpoint(args)
    model = load_recognizer(args.checkpoint)
    cfg, settings, source = checkpoint_eval_settings(args, model.info.input_height)
    check_decoder(model, args.decoder)
    decoding = make_decoding(model, args, settings["device"])
    dataset = create_dataset(cfg.name, args.split, cfg)
    out = Path(args.out) if args.out else default_out(args.checkpoint)
    name = f"{model.name} on {cfg.name}/{args.split} ({args.decoder})"
    report = error_analysis(model, dataset, out, decoding, settings["batch_size"], settings["device"], args.worst,
                            name=name, progress=progress_enabled(not args.quiet))
    files = report["files"]
    text = (f"{name}; data config: {source}\n"
            f"{errors_summary(report)}\n  wrote {files['json']}, {files['markdown']}"
            + (f", {files['contact_sheet']}" if files["contact_sheet"] else " (no errors: no contact sheet)"))
    return {"model": model.name, "checkpoint": args.checkpoint, "dataset": cfg.name, "split": args.split,
            "decoder": args.decoder, "data_config": source, **decoding_fields(decoding), **report, "text": text}


def default_out(checkpoint: str) -> Path:
    """local/errors/<run folder> for a run's checkpoint.pt (the stem alone would be "checkpoint" for all)."""
    path = Path(checkpoint)
    return DEFAULT_OUT / (path.parent.name if path.stem == "checkpoint" and path.parent.name else path.stem)
