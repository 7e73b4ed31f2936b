"""ocrbench train: train one model with the shared recipe, evaluate it, append its record.

Under torchrun (``torchrun --nproc-per-node N -m ocrbench train ...``) the processes train one model data-parallel
(:mod:`ocrbench.harness.distributed`): rank 0 runs the usual path and writes the checkpoints and the records; the other
ranks build the same model and data, train their shards into the same run folder and exit without output.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace

from ..bench.identity import run_dir, run_hash
from ..bench.suite import prepare_model, results_lock, run_model, skip_missing_eval_sets
from ..config import ModelEntry, SuiteConfig, TrainConfig, for_model
from ..errors import UserError
from ..harness import distributed
from ..harness.train import train
from .common import add_json, add_overrides, parse_override, set_quiet, suite_from_args


def register(sub) -> None:
    p = sub.add_parser("train", help="train and evaluate one model (appends to local/<suite>/runs.jsonl)")
    p.add_argument("--model", required=True, help="registered model name (see `ocrbench list models`)")
    p.add_argument("--dataset", help="dataset name, or kind:PATH (default: the config's, synth-lines)")
    p.add_argument("--config", help="suite YAML whose data and train sections to use (default: code defaults)")
    p.add_argument("--steps", type=int)
    p.add_argument("--max-minutes", type=float, help="safety limit in minutes: a run still training then stops and is recorded as truncated (never ranked); the budget is --steps")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16", "fp16"])
    p.add_argument("--grad-checkpointing", action="store_true", default=None)
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the training step (a new run identity: numerics differ slightly)")
    p.add_argument("--seed", type=int)
    p.add_argument("--decoder", action="append", help="decoder(s) to evaluate with (default: greedy)")
    p.add_argument("--out", help="folder for checkpoints (default: runs/)")
    p.add_argument("--results", help="folder of runs.jsonl and leaderboards (default: local/<suite name>, local/quick without --config)")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overrides(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    extra = {"data.name": args.dataset, "train.steps": args.steps, "train.max_minutes": args.max_minutes,
             "train.batch_size": args.batch_size, "train.lr": args.lr, "train.device": args.device,
             "train.precision": args.precision, "train.seed": args.seed,
             "train.grad_checkpointing": args.grad_checkpointing, "train.compile": args.compile, "runs_dir": args.out, "results_dir": args.results}
    refuse_suite_fields(args.overrides)
    cfg = suite_from_args(args.config, args.overrides, extra)
    entry = ModelEntry(args.model, decoders=tuple(args.decoder or ("greedy",)))
    cfg = replace(cfg, name="train", models=(entry,))
    preflight(for_model(entry, cfg).train)
    distributed.init_from_env(for_model(entry, cfg).train.device)
    try:
        if not distributed.is_main():
            train_shard(entry, cfg, resume=not args.no_resume)
            raise SystemExit(0)  # rank 0 alone reports: no output here, even with --json
        with results_lock(cfg.results_path):
            cfg = skip_missing_eval_sets(cfg, log=lambda msg: print(msg, file=sys.stderr))
            outcome = run_model(entry, cfg, resume=not args.no_resume, progress=not args.quiet)
    finally:
        distributed.shutdown()
    records = [{k: v for k, v in r.items() if k not in ("traceback",)} for r in outcome.records]
    world = distributed.env_world_size()
    shared = f"  (data-parallel over {world} processes)" if world > 1 else ""
    text = [f"{args.model}: {outcome.status}  checkpoint dir: {run_dir(entry, cfg)}{shared}"]
    for r in records:
        if r["status"] == "ok" and "cer" in r:
            text.append(f"  {r['decoder']:<8} CER {r['cer']:.4f}  WER {r['wer']:.4f}  "
                        f"({r['steps']} steps, {r['train_seconds']:.0f}s, {r['train_lines_per_s']:.1f} lines/s)")
        elif r["status"] == "ok":  # a detector
            text.append(f"  AP@0.5 {r['ap50']:.3f}  AP@[.5:.95] {r['ap']:.3f}  F1 {r['f1']:.3f}  "
                        f"({r['steps']} steps, {r['train_seconds']:.0f}s)")
        else:
            text.append(f"  error: {r['error']}")
    return {"status": outcome.status, "records": records, "text": "\n".join(text),
            "failed": outcome.status == "failed"}


# suite fields `train` has no use for (one model, one seed, its own suite name "train")
SUITE_ONLY = ("name", "models", "seeds", "reference_dir")


def refuse_suite_fields(overrides: list[str]) -> None:
    """A ``--set`` that `train` would ignore is refused rather than silently dropped."""
    for text in overrides:
        key = parse_override(text)[0]
        if key.split(".")[0] in SUITE_ONLY:
            raise UserError(f"--set {key}: `ocrbench train` ignores the suite field {key.split('.')[0]!r} (it trains "
                            "one model, one seed); use it with `ocrbench run`, or --seed/--model here")


def preflight(train_cfg: TrainConfig) -> None:
    """Under torchrun, a global batch that does not split is refused before anything is built. Every rank
    says so: a rank that exited silently could get rank 0 stopped by torchrun before rank 0 had printed."""
    distributed.check_batch_split(train_cfg.batch_size, distributed.env_world_size())


def train_shard(entry: ModelEntry, cfg: SuiteConfig, resume: bool) -> None:
    """A data-parallel rank other than 0: the model (same seed, same initial weights), training split, run
    folder and config hash of rank 0's :func:`~ocrbench.bench.suite.run_model`, with no validation, records or
    output (rank 0's warnings about the data are the ones shown)."""
    cfg = for_model(entry, cfg)
    set_quiet(True)  # cli.main restores it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, train_set = prepare_model(entry.name, entry.kwargs, cfg)
        train(model, train_set, cfg.train, run_dir(entry, cfg), config_hash=run_hash(entry, cfg), resume=resume,
              progress=False)
