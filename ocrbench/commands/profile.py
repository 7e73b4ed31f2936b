"""ocrbench profile: MACs, step time, throughput, memory and MFU of models at fixed input shapes; optionally
compiled against eager (``--compile``) and the throughput-optimal batch (``--batch-size sweep``)."""

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
    p.add_argument("--batch-size", default=None,
                   help="lines per step (default 32; backed off on CUDA out-of-memory), or 'sweep': double from 1 while "
                        "throughput improves by >= 5%% and report the best batch beside the batch-1 latency")
    p.add_argument("--max-batch", type=int, help="largest batch a sweep tries (default 1024)")
    p.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                   help="also time the step with torch.compile (mode: default, reduce-overhead, max-autotune, "
                        "max-autotune-no-cudagraphs); the row shows both throughputs and the compile time")
    p.add_argument("--data-share", nargs="?", const="quick", default=None, metavar="SUITE",
                   help="training rows also run the recipe's training loop on SUITE's real training data "
                        "(default quick; its data height unless --height) and report the share of step time "
                        "spent waiting for batches, with the loader's num_workers")
    p.add_argument("--workers", default=None, metavar="N|auto",
                   help="DataLoader workers of the --data-share measurement (default: the suite's train.num_workers)")
    p.add_argument("--precision",
                   help=f"one or more of {', '.join(PRECISIONS)}, comma-separated (default fp32, the recipe's; "
                        "bf16/fp16 are n/a on CPU)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (model and input)")
    p.add_argument("--grad-checkpointing", nargs="?", const="on", default="off", choices=["off", "on", "both"],
                   help="checkpoint the model's stages in training; 'both' profiles with and without")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--height", type=int, help="line height (default: the model's input height; 224 for timm)")
    p.add_argument("--width", default=None,
                   help="line width(s), comma-separated buckets (default: 16 x height, the reference shape)")
    p.add_argument("--warmup", type=int, help="untimed steps per row (default: the method's, 10)")
    p.add_argument("--iters", type=int, help="timed steps per row (default: the method's, 40)")
    p.add_argument("--max-seconds", type=float, help="stop timing a row after this long (at least 5 steps)")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads); recorded in every row")
    p.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN pick algorithms per shape")
    p.add_argument("--no-flops", action="store_true", help="skip the MAC count")
    p.add_argument("--cross-check-flops", action="store_true",
                   help="also count MACs with fvcore (torch.jit tracing); shown when it differs by more than 1%%")
    p.add_argument("--results", default="local/profile", help="folder of profiles.jsonl (default local/profile)")
    p.add_argument("--no-save", action="store_true", help="do not append the rows to profiles.jsonl")
    add_json(p)
    p.set_defaults(handler=handle)


def _split(values) -> list[str]:
    values = values if isinstance(values, list) else [values]
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _batch_options(args) -> dict:
    """ProfileSpec fields of ``--batch-size N|sweep`` and ``--max-batch``."""
    from ..profile.batch_sweep import SWEEP_MAX_BATCH

    if args.batch_size is None:
        return {}  # ProfileSpec's default
    if args.batch_size == "sweep":
        return {"sweep": True, "max_batch": args.max_batch or SWEEP_MAX_BATCH}
    try:
        return {"batch_size": int(args.batch_size)}
    except ValueError:
        raise UserError(f"--batch-size takes a number or 'sweep', got {args.batch_size!r}") from None


def _given(**options) -> dict:
    """The options the user gave; the others keep ProfileSpec's defaults (one place for each)."""
    return {k: v for k, v in options.items() if v is not None}


def _workers(args) -> int | str | None:
    """``--workers N|auto``, which only the data-share measurement uses; the suite config checks the value
    as it checks its own ``train.num_workers``."""
    if args.workers is not None and not args.data_share:
        raise UserError("--workers sets the loader of the --data-share measurement: add --data-share")
    return int(args.workers) if args.workers and args.workers.isdigit() else args.workers


def handle(args) -> dict:
    import torch

    from ..profile import PROFILES_FILE, ProfileSpec, expand_models, profile_model
    from ..records import append_record

    names = expand_models(_split(args.model))
    batch = _batch_options(args)
    modes = ["infer", "train"] if args.mode == "both" else _split(args.mode)
    precisions = _split(args.precision) if args.precision else [ProfileSpec.precision]
    checkpointing = {"off": [False], "on": [True], "both": [False, True]}[args.grad_checkpointing]
    widths = [int(w) for w in _split(args.width)] if args.width else [None]
    if args.threads:
        torch.set_num_threads(args.threads)
    height, workers = args.height, _workers(args)
    if args.data_share:  # a bad suite name fails here, before any model is profiled
        from ..profile.loader import suite_for_data_share

        height = height or suite_for_data_share(args.data_share, None, workers).data.height
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    specs = [ProfileSpec(mode=mode, precision=precision, channels_last=args.channels_last,
                         grad_checkpointing=ckpt and mode == "train", max_seconds=args.max_seconds, compile=args.compile, data_share=args.data_share,
                         data_workers=workers, **batch, **_given(warmup=args.warmup, iters=args.iters))
             for mode, precision, ckpt in itertools.product(modes, precisions, checkpointing)
             if not (ckpt and mode == "infer")]  # checkpointing only changes training
    if not specs:
        raise UserError("nothing to profile: check --mode")
    rows = []
    for name, width in itertools.product(names, widths):
        rows += profile_model(name, specs, device=args.device, height=height, width=width,
                              count_macs=not args.no_flops, cross_check_flops=args.cross_check_flops)
    if not args.no_save:
        for row in rows:
            append_record(Path(args.results) / PROFILES_FILE, row)
    failed = [r for r in rows if r["status"] == "error"]
    return {"rows": [{k: v for k, v in r.items() if k != "traceback"} for r in rows], "text": format_rows(rows),
            "failed": bool(failed)}


def _fmt(v, spec: str) -> str:
    return "" if v is None else format(v, spec)


def _status(r: dict) -> str:
    status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error') or r.get('reason', '')}"
    if r.get("macs_error"):
        status += f" (MACs unknown: {r['macs_error']})"
    if r.get("macs_cross_check"):
        status += f" (MACs cross-check: {r['macs_cross_check']})"
    return status


def _memory(r: dict) -> str:
    if r.get("mem_peak_allocated_mib") is not None:
        return f"{r['mem_peak_allocated_mib']:.0f} MiB peak"
    if r.get("saved_activation_mib") is not None:
        return f"{r['saved_activation_mib']:.1f} MiB saved"
    return ""


def _compiled_cells(r: dict) -> list[str]:
    """compiled lines/s (or the compile error), speed-up, compile seconds, compiled MFU."""
    if r.get("compile_error"):
        return [f"failed: {r['compile_error'][:80]}", "", "", ""]
    speed = r.get("compiled_samples_per_s")
    ratio = speed / r["samples_per_s"] if speed and r.get("samples_per_s") else None
    return [_fmt(speed, ".1f"), _fmt(ratio, ".2f") + ("x" if ratio else ""), _fmt(r.get("compile_s"), ".1f"),
            _fmt(r.get("compiled_mfu"), ".1%")]


def format_rows(rows: list[dict]) -> str:
    """The Markdown table of profile rows; compile and sweep columns appear when some row has them."""
    from tabulate import tabulate

    compiled = any(r.get("compile_mode") for r in rows)
    swept = any(r.get("sweep_points") for r in rows)
    loaded = any(r.get("data_share_suite") or r.get("data_share_error") for r in rows)
    table = []
    for r in rows:
        macs = r.get("macs_per_line_train" if r.get("mode") == "train" else "macs_per_line_infer")
        step = (f"{r['step_ms_median']:.2f} ± {r['step_ms_iqr'] / 2:.2f}" if r.get("step_ms_median") is not None
                else "")
        cells = [r["model"], r.get("mode"), r.get("precision"), "yes" if r.get("grad_checkpointing") else "",
                 r.get("batch_size", r.get("batch_size_requested")), f"{r.get('height')}x{r.get('width')}",
                 _fmt(macs and macs / 1e9, ".3f"), _fmt(macs and 2 * macs / 1e9, ".3f"), step,
                 _fmt(r.get("samples_per_s"), ".1f")]
        if swept:
            cells.append(_fmt(r.get("latency_ms_batch1"), ".2f"))
        cells += [_memory(r), _fmt(r.get("mfu"), ".1%")]
        if compiled:
            cells += _compiled_cells(r)
        if loaded:
            cells += _data_share_cells(r)
        table.append(cells + [_status(r)[:100]])
    headers = ["model", "mode", "precision", "ckpt", "best batch" if swept else "batch", "HxW", "GMACs/line",
               "GFLOPs/line", "step ms (median ± IQR/2)", "lines/s"]
    headers += ["ms @ batch 1"] if swept else []
    headers += ["memory", "MFU"]
    headers += ["compiled lines/s", "speed-up", "compile s", "compiled MFU"] if compiled else []
    headers += ["data wait", "workers", "lines/s with loader"] if loaded else []
    return tabulate(table, headers=headers + ["status"], tablefmt="github", disable_numparse=True) + "\n" + _note(
        compiled, swept, loaded)


def _data_share_cells(r: dict) -> list[str]:
    """data-wait share, loader workers, training lines/s with real batches (or the measurement's error)."""
    if r.get("data_share_error"):
        return [f"failed: {r['data_share_error'][:80]}", "", ""]
    return [_fmt(r.get("data_wait_share"), ".1%"), _fmt(r.get("data_share_workers"), "d"),
            _fmt(r.get("data_lines_per_s"), ".1f")]


def _note(compiled: bool, swept: bool, loaded: bool = False) -> str:
    note = ("GMACs = 10^9 multiply-accumulates (FLOPs = 2 x MACs), counted at the dispatcher (FlopCounterMode); "
            "lines/s = batch / median step time; memory: CUDA peak allocated, or on CPU the activations saved "
            "for backward; MFU (GPU only) counts the model's FLOPs, training = 3 x forward: recomputation "
            "(gradient checkpointing, torch.compile) is not useful work and is not counted")
    if swept:
        note += ("\nbest batch: batch doubled from 1 while lines/s grew by >= 5% (CUDA: backed off on "
                 "out-of-memory); ms @ batch 1: the median step time at batch 1 (the latency of one line)")
    if compiled:
        note += ("\ncompiled: the same step with predict / the loss under torch.compile, at the same batch; "
                 "compile s = wall time of the first compiled step (tracing, code generation and that step)")
    if loaded:
        note += ("\ndata wait: the recipe's training loop on the suite's real training lines (loader, augmentation, "
                 "collate, num_workers as shown), warm-up steps excluded: the share of step time spent waiting for "
                 "the next batch; lines/s with loader is that loop's speed (real line widths, not HxW)")
    else:
        note += ("\nno data-loading column: steps take batches built before the timed region (--data-share "
                 "measures it); training runs record the share of step time spent waiting for data "
                 "(data_wait_share)")
    return note
