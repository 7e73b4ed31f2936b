"""ocrbench eval: score a trained checkpoint on any line dataset (cross-dataset evaluation included)."""

from __future__ import annotations

from dataclasses import replace

from ..data.charset import report_overlap
from ..data.integrity import integrity_summary
from ..data.registry import DataConfig, create_dataset
from ..evaluate import evaluate
from ..records import environment
from ..runtime import resolve_device
from ..suite import dataset_charset
from ..train import load_model
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on a dataset split")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `ocrbench train`")
    p.add_argument("--dataset", default="synth-lines", help="dataset name or kind:PATH (default synth-lines)")
    p.add_argument("--split", default="test")
    p.add_argument("--decoder", default="greedy")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--test-size", type=int, help="lines in a generated test split (synthetic datasets)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files (counted in the output)")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    model = load_model(args.checkpoint)
    cfg = DataConfig(name=args.dataset, height=model.info.input_height, oov="replace", skip_bad=args.skip_bad)
    if args.test_size:
        cfg = replace(cfg, test_size=args.test_size, val_size=args.test_size)
    dataset = create_dataset(args.dataset, args.split, cfg)
    overlap = report_overlap(model.charset, dataset_charset(dataset))
    result = evaluate(model, dataset, decoder=args.decoder, batch_size=args.batch_size, device=args.device)
    out = {"model": model.name, "checkpoint": args.checkpoint, "dataset": args.dataset, "split": args.split,
           **result.as_dict(), "charset_overlap": overlap, "examples": result.examples,
           **integrity_summary(dataset),
           **environment(resolve_device(args.device))}
    out["text"] = (f"{model.name} on {args.dataset}/{args.split} ({result.lines} lines, {args.decoder}): "
                   f"CER {result.cer:.4f}  WER {result.wer:.4f}")
    if out["bad_files"]:
        out["text"] += f"\n  skipped {out['bad_files']} unreadable files, e.g. {out['bad_examples'][0]}"
    if overlap["only_second"]:
        out["text"] += f"\n  dataset characters the model cannot output: {overlap['only_second']!r}"
    return out
