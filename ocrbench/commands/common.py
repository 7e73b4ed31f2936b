"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ..bench.executors import CPUS_PER_JOB, EXECUTORS, INSTALL_RAY, MAX_RETRIES, make_executor
from ..config import DataConfig, SuiteConfig, TrainConfig, load_suite, parse_override, resolve_config  # noqa: F401 (commands use it)
from ..errors import UserError
from ..harness.checkpoint import checkpoint_file
from ..progress import progress_enabled, set_quiet  # noqa: F401  (re-exported for commands)


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config field, e.g. --set train.steps=100 (repeatable)")


def suite_from_args(config: str | None, overrides: list[str], extra: dict | None = None) -> SuiteConfig:
    pairs = dict(parse_override(o) for o in overrides)
    path = resolve_config(config)
    if pairs:
        load_suite(path, pairs)  # every --set value is checked, even one a dedicated option then replaces
    pairs.update({k: v for k, v in (extra or {}).items() if v is not None})
    return load_suite(path, pairs)


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """Where a suite's jobs run (`run`, `ci`): here one after the other, side by side in worker processes, or
    as Ray tasks."""
    group = p.add_argument_group(f"running jobs in parallel (--executor processes or --jobs N; --executor ray: "
                                 f"{INSTALL_RAY})")
    group.add_argument("--executor", choices=EXECUTORS,
                       help="sequential (default): one job after the other in this process; processes (the default "
                            "with --jobs): every (model, seed) job in a worker process of its own on this CPU, "
                            "--jobs at a time; ray: every job a Ray task with a GPU (or --cpus-per-job CPUs) of its "
                            "own, queued when there are more jobs than devices")
    group.add_argument("--jobs", type=int, help="jobs side by side with --executor processes (default: the usable "
                                                "cores over --cpus-per-job)")
    group.add_argument("--address", help="Ray cluster to run on (`ray start --head` prints it; auto: the one on "
                                         "this machine); default: a local Ray instance for this run. On a cluster, "
                                         "runs_dir must be a shared filesystem at the same path on every node")
    group.add_argument("--ray-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    group.add_argument("--cpus-per-job", type=int,
                       help=f"CPUs (and torch threads) each job reserves (default: {CPUS_PER_JOB})")
    group.add_argument("--max-retries", type=int,
                       help=f"times Ray reruns a job whose worker died (default: {MAX_RETRIES}: a failed row; "
                            "rerunning the suite resumes the job from its checkpoint)")


def executor_from_args(args):
    name = args.executor or ("processes" if args.jobs is not None else "sequential")
    return make_executor(name, jobs=args.jobs, address=args.address, ray_cpus=args.ray_cpus,
                         cpus_per_job=args.cpus_per_job, max_retries=args.max_retries)


# ---- evaluating a checkpoint (`eval`, `errors`) ------------------------------------------------------------
def add_checkpoint_eval_options(p: argparse.ArgumentParser) -> None:
    """The options of commands that evaluate a checkpoint; defaults come from the run that wrote it."""
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint.pt written by `ocrbench train` or `run`, its run folder, or zoo:NAME (a "
                        "reference checkpoint of `ocrbench zoo`)")
    add_zoo_dir(p)
    p.add_argument("--dataset", help="dataset name or kind:PATH (default: the run's, else synth-lines)")
    p.add_argument("--config", help="suite YAML whose data section to use (default: the config.yaml beside "
                                    "the checkpoint, when there is one)")
    p.add_argument("--split", default="test")
    p.add_argument("--decoder", default="greedy", help="one of the model's decoders: greedy, beam, beam+lm (a "
                                                       "hybrid CTC/attention model also ctc, ctc+lm, "
                                                       "joint, joint+lm)")
    p.add_argument("--lm", metavar="PATH",
                   help="character LM checkpoint for a +lm decoder (beam+lm, ctc+lm, joint+lm; `ocrbench lm train "
                        "--out`); default: the LM of the default lm settings, trained once (about a minute) and cached")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--batch-size", type=int, help="lines per batch (default: the run's train.eval_batch_size)")
    p.add_argument("--test-size", type=int, help="lines in a generated test split (synthetic datasets)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files (counted in the output)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or LM training messages")


def add_zoo_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoo-dir", metavar="DIR|URL",
                   help="where zoo:NAME checkpoints are: a folder or a URL base (default: the package's zoo/ folder for "
                        "the checkpoints it ships, else $OCRBENCH_ZOO, else the index's URL); every file is "
                        "checked against the index's sha256")


def resolve_zoo_checkpoint(args) -> None:
    """``--checkpoint zoo:NAME`` becomes the verified local file; the run config that came with it gives the
    data settings (as a run folder's config.yaml does) unless ``--config`` names another."""
    from ..deploy.zoo import is_zoo, resolve

    if is_zoo(args.checkpoint):
        path, config, _ = resolve(args.checkpoint, args.zoo_dir)
        args.checkpoint, args.config = str(path), args.config or str(config)


def run_config(args) -> tuple[SuiteConfig | None, str]:
    """The suite config of ``--config``, else of the run's config.yaml beside the checkpoint, else None."""
    path = resolve_config(args.config) if args.config else checkpoint_file(args.checkpoint).parent / "config.yaml"
    if args.config or path.is_file():
        return load_suite(path), str(path)
    return None, "defaults"


def checkpoint_eval_settings(args, height: int) -> tuple[DataConfig, dict, str]:
    """Data settings and ``{"batch_size", "device"}`` for evaluating ``args.checkpoint``: those of the run
    that wrote it (so the CER equals the run's record), overridden by the options given. ``--dataset``
    naming another dataset starts from that dataset's defaults. Always at the model's input height, with
    characters outside the charset replaced and counted."""
    cfg, source = run_config(args)
    data = cfg.data if cfg else DataConfig()
    train = cfg.train if cfg else TrainConfig()
    if args.dataset and args.dataset != data.name:
        data, source = DataConfig(name=args.dataset), "defaults"
    data = replace(data, height=height, oov="replace", skip_bad=args.skip_bad or data.skip_bad)
    if args.test_size is not None:
        if args.test_size < 1:
            raise UserError(f"--test-size must be >= 1, got {args.test_size}")
        data = replace(data, test_size=args.test_size, val_size=args.test_size)
    batch_size = train.eval_batch_size if args.batch_size is None else args.batch_size
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    return data, {"batch_size": batch_size, "device": args.device or train.device}, source
