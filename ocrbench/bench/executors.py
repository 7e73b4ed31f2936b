"""Where a suite's jobs run: here, one after the other (:func:`ocrbench.bench.suite.run_jobs`), or as Ray tasks.

With Ray (``pip install 'ocrbench[distributed]'``), every (model, seed) job is one task that asks for one GPU
when it trains on CUDA and the cluster has GPUs, else ``cpus_per_job`` CPUs; Ray queues the jobs that do not
fit yet. A task never writes the results folder: it collects its records and returns them, and the driver
appends them (atomically, :func:`ocrbench.records.append_record`) as each job finishes, so runs.jsonl has
one writer. Checkpoints are written by the tasks into ``runs_dir``, which on a cluster must be a filesystem
every node mounts at the same path (a killed job resumes from its checkpoint wherever it runs next).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from ..config import for_model
from ..errors import UserError
from ..records import RUNS_FILE, append_record
from .identity import job_identity
from .suite import (
    Executor,
    Job,
    RunOutcome,
    check_writable,
    log_outcome,
    run_jobs,
    run_model,
    skip_job,
)

EXECUTORS = ("sequential", "ray")
INSTALL_RAY = "pip install 'ocrbench[distributed]'"
CPUS_PER_JOB = 1  # as many CPU jobs at once as cores; give more to models whose ops can use several threads
# Ray reruns a task whose worker died up to 3 times by default, silently, and a job killed for using too
# much memory would be killed again each time. 0: a lost job becomes a failed row at once, with Ray's error,
# and the next run of the suite resumes it from its checkpoint. A retry (--max-retries) resumes from the
# checkpoint too, and duplicates no row: a task's records reach the driver only when it has finished.
MAX_RETRIES = 0
# environment variables a task needs to see the driver's choices (a cluster node does not inherit them)
FORWARDED_ENV = ("OCRBENCH_CACHE",)


def make_executor(name: str = "sequential", *, address: str | None = None, ray_cpus: int | None = None,
                  cpus_per_job: int | None = None, max_retries: int | None = None) -> Executor:
    """The executor called ``name``; the Ray options are refused with any other (they would do nothing)."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}. Valid executors: {', '.join(EXECUTORS)}")
    options = {"address": address, "ray_cpus": ray_cpus, "cpus_per_job": cpus_per_job, "max_retries": max_retries}
    if name == "sequential":
        given = [k for k, v in options.items() if v is not None]
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} applies to --executor ray only")
        return run_jobs
    return RayExecutor(**{k: v for k, v in options.items() if v is not None})


def import_ray():
    """The ``ray`` module, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray: {INSTALL_RAY}") from None
    return ray


@dataclass(frozen=True)
class RayExecutor:
    """Run jobs as Ray tasks on ``address`` (a running cluster; ``"auto"``: the one on this machine), else on a
    local instance of ``ray_cpus`` CPUs (default: all), started for this suite and stopped after it. An
    instance already started in this process (``ray.init`` by the caller) is used as it is."""
    address: str | None = None
    ray_cpus: int | None = None
    cpus_per_job: int = CPUS_PER_JOB
    max_retries: int = MAX_RETRIES

    def __post_init__(self):
        if self.cpus_per_job < 1:
            raise UserError(f"--cpus-per-job must be >= 1, got {self.cpus_per_job}")
        if self.max_retries < 0:
            raise UserError(f"--max-retries must be >= 0, got {self.max_retries}")
        if self.ray_cpus is not None and (self.ray_cpus < 1 or self.address):
            raise UserError("--ray-cpus sizes a local Ray instance: give a number >= 1, and no --address")
        import_ray()  # a missing extra is reported before anything runs

    def __call__(self, jobs: Sequence[Job], resume: bool = True, progress: bool = True, log=print
                 ) -> list[RunOutcome]:
        outcomes = {i: skip_job(job, log) for i, job in enumerate(jobs) if not job.todo}
        owed = {i: job for i, job in enumerate(jobs) if job.todo}
        if owed:
            for folder in {job.cfg.results_path for job in owed.values()}:
                check_writable(folder)  # before training, so no finished job's record can be lost
            with ray_session(self.address, self.ray_cpus) as ray:
                outcomes.update(self._run(ray, owed, resume, log))
        return [outcomes[i] for i in range(len(jobs))]

    def _run(self, ray, owed: dict[int, Job], resume: bool, log) -> dict[int, RunOutcome]:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(run_job_task)
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        common = {"max_retries": self.max_retries, **({"runtime_env": {"env_vars": env}} if env else {})}
        pending = {}
        for i, job in owed.items():  # named: `ray list tasks` and `ps` show which job a worker runs
            options = {**common, **job_resources(job, gpus, self.cpus_per_job), "name": task_name(job)}
            pending[task.options(**options).remote(job, resume, self.cpus_per_job, os.getcwd())] = i
        done, t0 = {}, time.perf_counter()
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ref)
                done[i] = collect(ray, ref, owed[i])
                log_outcome(log, owed[i], done[i], t0)
        finally:  # a user error or Ctrl-C: jobs not yet collected are stopped, not left running on the cluster
            for ref in pending:
                ray.cancel(ref, force=True)
        return done


def task_name(job: Job) -> str:
    """The Ray task's name; a worker process running it is titled ``ray::<name>``."""
    return f"ocrbench {job.cfg.name} {job.entry.name} seed {job.seed}"


def job_resources(job: Job, cluster_gpus: float, cpus_per_job: int = CPUS_PER_JOB) -> dict:
    """The Ray resource request of one job: a GPU when it trains on CUDA (``auto`` and the cluster has GPUs,
    or ``cuda``), else ``cpus_per_job`` CPUs; a GPU job also reserves ``cpus_per_job`` CPUs for its loader."""
    device = for_model(job.entry, job.cfg).train.device
    if device.startswith("cuda:"):  # Ray shows a task only the GPU it was given, as cuda:0
        raise UserError(f"--executor ray gives each job a GPU of its own: use train.device=cuda or auto, "
                        f"not {device}")
    if device == "cuda" and not cluster_gpus:
        raise UserError("train.device=cuda was asked for, but the Ray cluster has no GPUs")
    if device == "cuda" or (device == "auto" and cluster_gpus):
        return {"num_gpus": 1, "num_cpus": cpus_per_job}
    return {"num_gpus": 0, "num_cpus": cpus_per_job}


def run_job_task(job: Job, resume: bool, threads: int, cwd: str) -> tuple[RunOutcome, list[tuple[str, dict]]]:
    """The body of one Ray task (module level: Ray pickles it by name): the job's records, collected instead
    of written, for the driver to append. Relative paths in the config mean what they mean to the driver."""
    import torch

    torch.set_num_threads(threads)  # as many threads as CPUs reserved: jobs sharing a node do not oversubscribe
    if os.path.isdir(cwd):
        os.chdir(cwd)
    written: list[tuple[str, dict]] = []
    outcome = run_model(job.entry, job.cfg, resume=resume, progress=False, todo=set(job.todo),
                        sink=lambda name, record: written.append((name, record)))
    return outcome, written


def collect(ray, ref, job: Job) -> RunOutcome:
    """Append a finished task's records under the job's results folder, in the order the task made them;
    a task that died (worker killed, node lost) becomes one ``failed`` row. A user error is raised."""
    try:
        outcome, written = ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, UserError):  # a mistake in the config: the same one line as without Ray
            raise e.cause from None
        return lost_job(job, e.cause or e)
    except ray.exceptions.RayError as e:  # WorkerCrashedError, OutOfMemoryError, NodeDiedError, ...
        return lost_job(job, e)
    for name, record in written:
        append_record(job.cfg.results_path / name, record)
    return outcome


def lost_job(job: Job, error: BaseException) -> RunOutcome:
    """The failed row of a job whose task returned nothing: its identity and Ray's error (first line)."""
    cfg = for_model(job.entry, job.cfg)
    message = (str(error).strip().splitlines() or [""])[0]
    record = {**job_identity(job.entry, cfg), "status": "failed", "error": f"{type(error).__name__}: {message}",
              "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    append_record(cfg.results_path / RUNS_FILE, record)
    return RunOutcome(job.entry.name, "failed", [record], job.seed)


@contextmanager
def ray_session(address: str | None, cpus: int | None):
    """Ray, connected to ``address`` or to a local instance of ``cpus`` CPUs that is stopped afterwards; an
    instance the caller already started is used as it is and left running."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(address=address, num_cpus=cpus)
    except ConnectionError as e:
        raise UserError(f"cannot connect to the Ray cluster at {address}: {e} (is `ray start --head` running "
                        "there?)") from None
    try:
        yield ray
    finally:
        ray.shutdown()

