"""ocrbench export: checkpoints to ONNX with a parity check against PyTorch; optionally the deployment table
(batch-1 latency by line length for PyTorch eager, torch.compile and onnxruntime, and int8)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from .common import add_json, add_zoo_dir, checkpoint_eval_settings, progress_enabled


def register(sub) -> None:
    p = sub.add_parser("export", help="export checkpoints to ONNX, check parity; optionally latency and int8",
                       description="Export each checkpoint to ONNX (a CTC model's forward; an autoregressive "
                                   "model's encoder and one decoder step; a detector's grid), then compare "
                                   "onnxruntime with PyTorch: output error and the greedy CER of both on the "
                                   "test split. --latency and --int8 add the deployment rows; --results writes "
                                   "them with a Markdown table and a plot.")
    p.add_argument("--checkpoint", action="append", required=True,
                   help="checkpoint.pt, run folder or zoo:NAME (repeatable)")
    add_zoo_dir(p)
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (onnx)")
    p.add_argument("--out", default="local/export", help="folder of the exported files (default local/export)")
    p.add_argument("--latency", action="store_true",
                   help="time one line (batch 1) by line length: eager, torch.compile, onnxruntime")
    p.add_argument("--int8", action="store_true", help="int8 dynamic quantisation (PyTorch and onnxruntime): CER "
                                                       "and, with --latency, speed")
    p.add_argument("--no-compile", action="store_true", help="no torch.compile latency rows")
    p.add_argument("--chars", default=None, help="line lengths in characters (default 8,16,32,64,128)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="timing budget per line length and backend (default 1.5)")
    p.add_argument("--threads", type=int, help="CPU threads of torch and onnxruntime (recorded in every row)")
    p.add_argument("--device", default="cpu", help="device of the eager and compiled latency rows (cpu, cuda)")
    p.add_argument("--test-size", type=int, help="lines of the CER comparison (default: the run's test split)")
    p.add_argument("--batch-size", type=int, help="lines per batch of the CER evaluations")
    p.add_argument("--results", help="write deploy.jsonl/.csv/.md and latency.png to this folder")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    add_json(p)
    p.set_defaults(handler=handle)


def _options(args):
    from ..deploy.measure import DeployOptions

    given = {}
    if args.chars:
        try:
            given["chars"] = tuple(int(c) for c in args.chars.split(","))
        except ValueError:
            raise UserError(f"--chars takes comma-separated numbers, got {args.chars!r}") from None
        if min(given["chars"]) < 1:
            raise UserError("--chars must be >= 1")
    if args.max_seconds is not None:
        given["max_seconds"] = args.max_seconds
    return DeployOptions(latency=args.latency, int8=args.int8, compile=not args.no_compile, device=args.device,
                         **given)


def _dataset(args, checkpoint: argparse.Namespace, model):
    """The test split the checkpoint's run was scored on (its config.yaml, or a zoo entry's suite, as `ocrbench
    eval` finds it)."""
    from ..datasets import create_dataset

    settings_args = argparse.Namespace(checkpoint=checkpoint.checkpoint, config=checkpoint.config, dataset=None,
                                       test_size=args.test_size, batch_size=args.batch_size, device="cpu",
                                       skip_bad=False)
    cfg, settings, _ = checkpoint_eval_settings(settings_args, model.info.input_height)
    return create_dataset(cfg.name, "test", cfg), cfg.name, settings["batch_size"]


def handle(args) -> dict:
    import sys
    from dataclasses import replace

    import torch

    from ..deploy import require
    from ..deploy.measure import measure_checkpoint
    from ..deploy.table import markdown, write_results
    from ..harness.checkpoint import load_model
    from ..runtime import resolve_device
    from .common import resolve_zoo_checkpoint

    require("onnx"), require("onnxruntime")  # before any model is loaded: one line naming the extra
    resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    options = _options(args)
    rows = []
    for spec in args.checkpoint:
        one = argparse.Namespace(checkpoint=spec, zoo_dir=args.zoo_dir, config=None)
        resolve_zoo_checkpoint(one)
        model = load_model(one.checkpoint)
        dataset, name, batch_size = _dataset(args, one, model)
        if progress_enabled(not args.quiet):
            print(f"export {model.name} ({spec})", file=sys.stderr)
        rows += measure_checkpoint(model, spec, dataset, name, Path(args.out),
                                   replace(options, batch_size=batch_size))
    out = {"rows": rows, "text": markdown(rows),
           "failed": any(r["status"] == "error" for r in rows if r["measure"] == "export")}
    if args.results:
        paths = write_results(rows, args.results)
        out["files"] = {k: str(v) for k, v in paths.items()}
        out["text"] += "\nwrote " + ", ".join(out["files"].values())
    return out
