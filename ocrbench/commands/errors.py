"""ocrbench errors: error analysis of a checkpoint (confusions, CER by length and writer, the worst lines)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config import load_suite
from ..data.registry import DataConfig, create_dataset
from ..diagnostics.errors import WORST, error_analysis, errors_summary
from ..errors import UserError
from .common import add_json, progress_enabled, resolve_config
from .eval import attach_decoder, check_decoder, check_sizes, load_recognizer

DEFAULT_OUT = Path("local") / "errors"  # + the checkpoint's folder name (its run) or file stem


def register(sub) -> None:
    p = sub.add_parser("errors", help="error analysis of a checkpoint: confusions, CER by length and writer, "
                                      "a contact sheet of the worst lines")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `ocrbench train` or `run`")
    p.add_argument("--dataset", help="dataset name or kind:PATH (default: the run's, else synth-lines)")
    p.add_argument("--config", help="suite YAML whose data section to use (default: the config.yaml beside "
                                    "the checkpoint, when there is one)")
    p.add_argument("--split", default="test")
    p.add_argument("--decoder", default="greedy", help="one of the model's decoders: greedy, beam, beam+lm")
    p.add_argument("--lm", metavar="PATH", help="character LM checkpoint for --decoder beam+lm")
    p.add_argument("--worst", type=int, default=WORST, help=f"lines on the contact sheet (default {WORST})")
    p.add_argument("--out", help="output folder (default local/errors/<run or checkpoint stem>/)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--test-size", type=int, help="lines in a generated test split (synthetic datasets)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files")
    p.add_argument("--quiet", action="store_true", help="no progress bars or LM training messages")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    check_sizes(args)
    if args.worst < 0:
        raise UserError(f"--worst must be >= 0, got {args.worst}")
    model = load_recognizer(args.checkpoint)
    check_decoder(model, args.decoder)
    decoding = attach_decoder(model, args)
    cfg, source = data_config(args, model.info.input_height)
    dataset = create_dataset(cfg.name, args.split, cfg)
    out = Path(args.out) if args.out else default_out(args.checkpoint)
    name = f"{model.name} on {cfg.name}/{args.split} ({args.decoder})"
    report = error_analysis(model, dataset, out, args.decoder, args.batch_size, args.device, args.worst,
                            name=name, progress=progress_enabled(not args.quiet))
    files = report["files"]
    text = (f"{name}; data config: {source}\n"
            f"{errors_summary(report)}\n  wrote {files['json']}, {files['markdown']}"
            + (f", {files['contact_sheet']}" if files["contact_sheet"] else " (no errors: no contact sheet)"))
    return {"model": model.name, "checkpoint": args.checkpoint, "dataset": cfg.name, "split": args.split,
            "decoder": args.decoder, "data_config": source, **decoding, **report, "text": text}


def data_config(args, height: int) -> tuple[DataConfig, str]:
    """The data section of ``--config``, else of the run's config.yaml beside the checkpoint (the data the
    model was trained on), else the defaults; ``--dataset`` naming another dataset starts from the defaults.
    Always at the model's input height, out-of-charset characters replaced (as `ocrbench eval`)."""
    path = resolve_config(args.config) if args.config else Path(args.checkpoint).parent / "config.yaml"
    cfg, source = DataConfig(), "defaults"
    if args.config or path.is_file():
        cfg, source = load_suite(path).data, str(path)
    if args.dataset and args.dataset != cfg.name:
        cfg, source = DataConfig(name=args.dataset), "defaults"
    cfg = replace(cfg, height=height, oov="replace", skip_bad=args.skip_bad or cfg.skip_bad)
    if args.test_size:
        cfg = replace(cfg, test_size=args.test_size, val_size=args.test_size)
    return cfg, source


def default_out(checkpoint: str) -> Path:
    """local/errors/<run folder> for a run's checkpoint.pt (the stem alone would be "checkpoint" for all)."""
    path = Path(checkpoint)
    return DEFAULT_OUT / (path.parent.name if path.stem == "checkpoint" and path.parent.name else path.stem)
