"""ocrbench profile: MACs, step time, throughput, memory and MFU of models at fixed input shapes."""

from __future__ import annotations

import itertools
from pathlib import Path

from ..config import PRECISIONS
from ..errors import UserError
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("profile", help="measure MACs, throughput, latency, memory and MFU of models",
                       description="Profile models at fixed input shapes: warm-up steps, then timed steps "
                                   "(median and IQR). Each (model, mode, precision, checkpointing, width) is one "
                                   "row; a failure becomes that row's error. Rows are appended to "
                                   "<results>/profiles.jsonl.")
    p.add_argument("--model", action="append", required=True,
                   help="registry name, wildcard ('crnn*'), 'all' (every recognizer but *_tiny) or timm:NAME; "
                        "repeatable or comma-separated")
    p.add_argument("--mode", default="infer,train", help="infer, train or both (comma-separated; default both)")
    p.add_argument("--batch-size", type=int, default=32, help="lines per step; backed off on CUDA out-of-memory")
    p.add_argument("--precision", default="fp32",
                   help=f"one or more of {', '.join(PRECISIONS)}, comma-separated (bf16/fp16 are n/a on CPU)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (model and input)")
    p.add_argument("--grad-checkpointing", nargs="?", const="on", default="off", choices=["off", "on", "both"],
                   help="checkpoint the model's stages in training; 'both' profiles with and without")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--height", type=int, help="line height (default: the model's input height; 224 for timm)")
    p.add_argument("--width", default=None,
                   help="line width(s), comma-separated buckets (default: 16 x height, the reference shape)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per row (default 10)")
    p.add_argument("--iters", type=int, default=40, help="timed steps per row (default 40)")
    p.add_argument("--max-seconds", type=float, help="stop timing a row after this long (at least 5 steps)")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads); recorded in every row")
    p.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN pick algorithms per shape")
    p.add_argument("--no-flops", action="store_true", help="skip the MAC count")
    p.add_argument("--results", default="local/profile", help="folder of profiles.jsonl (default local/profile)")
    p.add_argument("--no-save", action="store_true", help="do not append the rows to profiles.jsonl")
    add_json(p)
    p.set_defaults(handler=handle)


def _split(values) -> list[str]:
    values = values if isinstance(values, list) else [values]
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def handle(args) -> dict:
    import torch

    from ..profile import PROFILES_FILE, ProfileSpec, expand_models, profile_model
    from ..records import append_record

    names = expand_models(_split(args.model))
    modes = ["infer", "train"] if args.mode == "both" else _split(args.mode)
    precisions = _split(args.precision)
    checkpointing = {"off": [False], "on": [True], "both": [False, True]}[args.grad_checkpointing]
    widths = [int(w) for w in _split(args.width)] if args.width else [None]
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    specs = [ProfileSpec(mode, args.batch_size, precision, args.channels_last, ckpt and mode == "train",
                         args.warmup, args.iters, args.max_seconds)
             for mode, precision, ckpt in itertools.product(modes, precisions, checkpointing)
             if not (ckpt and mode == "infer")]  # checkpointing only changes training
    if not specs:
        raise UserError("nothing to profile: check --mode")
    rows = []
    for name, width in itertools.product(names, widths):
        rows += profile_model(name, specs, device=args.device, height=args.height, width=width,
                              count_macs=not args.no_flops)
    if not args.no_save:
        for row in rows:
            append_record(Path(args.results) / PROFILES_FILE, row)
    failed = [r for r in rows if r["status"] == "error"]
    return {"rows": [{k: v for k, v in r.items() if k != "traceback"} for r in rows], "text": format_rows(rows),
            "failed": bool(failed)}


def format_rows(rows: list[dict]) -> str:
    from tabulate import tabulate

    def fmt(v, spec):
        return "" if v is None else format(v, spec)

    table = []
    for r in rows:
        macs = r.get("macs_per_line_train" if r.get("mode") == "train" else "macs_per_line_infer")
        mem = r.get("mem_peak_allocated_mib")
        mem_text = f"{mem:.0f} MiB peak" if mem is not None else (
            f"{r['saved_activation_mib']:.1f} MiB saved" if r.get("saved_activation_mib") is not None else "")
        step = (f"{r['step_ms_median']:.2f} ± {r['step_ms_iqr'] / 2:.2f}" if r.get("step_ms_median") is not None
                else "")
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error') or r.get('reason', '')}"
        if r.get("macs_error"):
            status += f" (MACs unknown: {r['macs_error']})"
        table.append([r["model"], r.get("mode"), r.get("precision"), "yes" if r.get("grad_checkpointing") else "",
                      r.get("batch_size", r.get("batch_size_requested")), f"{r.get('height')}x{r.get('width')}",
                      fmt(macs and macs / 1e9, ".3f"), fmt(macs and 2 * macs / 1e9, ".3f"), step, fmt(r.get("samples_per_s"), ".1f"), mem_text,
                      fmt(r.get("mfu"), ".1%"), status[:100]])
    headers = ["model", "mode", "precision", "ckpt", "batch", "HxW", "GMACs/line", "GFLOPs/line",
               "step ms (median ± IQR/2)",
               "lines/s", "memory", "MFU", "status"]
    note = ("GMACs = 10^9 multiply-accumulates (FLOPs = 2 x MACs); lines/s = batch / median step time; "
            "memory: CUDA peak allocated, or on CPU the activations saved for backward")
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True) + "\n" + note
