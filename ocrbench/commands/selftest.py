"""ocrbench selftest: check the premises of every number on this machine (dtypes, checkpointing, resume,
timing, memory, MFU) and write a JSON report. See docs/selftest.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..config import LOCAL_RESULTS
from ..errors import UserError
from .common import add_json, progress_enabled


def register(sub) -> None:
    p = sub.add_parser("selftest", help="check this machine: layer dtypes per precision, checkpointing, resume, "
                                        "timing, peak memory, MFU",
                       description="Run once on a new machine, GPU boxes especially (about two minutes there): "
                                   "each check prints PASS, WARN, FAIL or SKIP; on a CPU the subset that applies "
                                   "runs with the *_tiny models. Exit status 1 when a check fails.")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    p.add_argument("--out", help=f"JSON report (default {LOCAL_RESULTS}/selftest/<cpu|cuda>.json)")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads); recorded in the report")
    add_json(p)
    p.set_defaults(handler=handle)


def default_report_path(device_type: str) -> Path:
    return Path(LOCAL_RESULTS) / "selftest" / f"{device_type}.json"


def handle(args) -> dict:
    import torch

    from ..diagnostics.selftest import format_report, run_selftest
    from ..records import atomic_write_text
    from ..runtime import resolve_device

    try:
        device = resolve_device(args.device)
    except RuntimeError as e:  # torch.device("gpu"): torch's own message names the valid device types
        raise UserError(f"--device {args.device!r}: {str(e).splitlines()[0]}") from None
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        report = run_selftest(device, on_result=_print_line if progress_enabled() and not args.json else None)
    finally:
        torch.set_num_threads(threads)  # main() may run again in this process (tests, notebooks)
    out = Path(args.out) if args.out else default_report_path(device.type)
    atomic_write_text(out, json.dumps(report, indent=1, default=str) + "\n")
    return {**report, "report": str(out), "text": f"{format_report(report)}\nreport: {out}"}


def _print_line(result) -> None:
    """One line per check as it finishes (the GPU run takes minutes); the full list is printed at the end."""
    print(result.line(), file=sys.stderr, flush=True)
