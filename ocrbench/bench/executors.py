"""Where a suite's jobs run: here, one after the other (:func:`ocrbench.bench.suite.run_jobs`), side by side in
worker processes on this machine (:class:`ProcessExecutor`), or as Ray tasks.

Worker processes (``--executor processes``, or ``--jobs N``; nothing to install) are for a CPU: every (model,
seed) job in a process of its own with ``cpus_per_job`` torch threads, as many at once as fit the usable
cores. Small recognizers' ops use a second thread poorly (on 2 cores attention_lm_small trained as fast on one
thread beside another job as alone on two), so side by side a suite takes about half the time in turn does.
Like a Ray task, a worker returns its records and the driver appends them as each job finishes; a worker
that dies (killed, out of memory) becomes a ``failed`` row, and running the suite again resumes it from its
checkpoint.

With Ray (``pip install 'ocrbench[distributed]'``), every (model, seed) job is one task that asks for one GPU
when it trains on CUDA and the cluster has GPUs, else ``cpus_per_job`` CPUs; Ray queues the jobs that do not
fit yet. A task never writes the results folder: it collects its records and returns them, and the driver
appends them (atomically, :func:`ocrbench.records.append_record`) as each job finishes, so runs.jsonl has
one writer. Checkpoints are written by the tasks into ``runs_dir``, which on a cluster must be a filesystem
every node mounts at the same path (a killed job resumes from its checkpoint wherever it runs next).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
import time
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from ..config import for_model
from ..errors import UserError
from ..records import RUNS_FILE, append_record
from ..runtime import usable_cores
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

EXECUTORS = ("sequential", "processes", "ray")
INSTALL_RAY = "pip install 'ocrbench[distributed]'"
CPUS_PER_JOB = 1  # as many CPU jobs at once as cores; give more to models whose ops can use several threads
# Ray reruns a task whose worker died up to 3 times by default, silently, and a job killed for using too
# much memory would be killed again each time. 0: a lost job becomes a failed row at once, with Ray's error,
# and the next run of the suite resumes it from its checkpoint. A retry (--max-retries) resumes from the
# checkpoint too, and duplicates no row: a task's records reach the driver only when it has finished.
MAX_RETRIES = 0
# seconds a worker gets to end on its own after Ctrl-C (it saves nothing more: its last checkpoint stands)
WORKER_GRACE_S = 10.0
# how often a worker process checks that its driver is alive (a driver killed by SIGTERM or SIGKILL runs no
# cleanup: its workers would go on training, and a resumed suite would then share their run folders)
PARENT_POLL_S = 1.0
# environment variables a task needs to see the driver's choices (a cluster node does not inherit them)
FORWARDED_ENV = ("OCRBENCH_CACHE",)


# the options each executor takes; any other given is refused (it would do nothing)
OPTIONS = {"sequential": (), "processes": ("jobs", "cpus_per_job"),
           "ray": ("address", "ray_cpus", "cpus_per_job", "max_retries")}


def make_executor(name: str = "sequential", **options) -> Executor:
    """The executor called ``name`` with ``options`` (those left None take their defaults)."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}. Valid executors: {', '.join(EXECUTORS)}")
    given = {k: v for k, v in options.items() if v is not None}
    for key in given:
        if key not in OPTIONS[name]:
            takers = " or ".join(e for e in EXECUTORS if key in OPTIONS[e])
            raise UserError(f"--{key.replace('_', '-')} applies to --executor {takers} only")
    if name == "sequential":
        return run_jobs
    return (ProcessExecutor if name == "processes" else RayExecutor)(**given)


@dataclass(frozen=True)
class ProcessExecutor:
    """Run CPU jobs in worker processes on this machine, ``jobs`` at a time (default: the usable cores over
    ``cpus_per_job``), each with ``cpus_per_job`` torch threads. A job that would train on a GPU is refused:
    GPUs take one job each, in turn or with Ray."""
    jobs: int | None = None
    cpus_per_job: int = CPUS_PER_JOB

    def __post_init__(self):
        if self.cpus_per_job < 1:
            raise UserError(f"--cpus-per-job must be >= 1, got {self.cpus_per_job}")
        if self.jobs is not None and self.jobs < 1:
            raise UserError(f"--jobs must be >= 1, got {self.jobs}")

    @property
    def width(self) -> int:
        return self.jobs or max(1, usable_cores() // self.cpus_per_job)

    def __call__(self, jobs: Sequence[Job], resume: bool = True, progress: bool = True, log=print
                 ) -> list[RunOutcome]:
        outcomes, owed = split_owed(jobs, log)
        for job in owed.values():
            check_trains_on_cpu(job)
        outcomes.update(self._run(owed, resume, progress, log) if owed else {})
        return [outcomes[i] for i in range(len(jobs))]

    def _run(self, owed: dict[int, Job], resume: bool, progress: bool, log) -> dict[int, RunOutcome]:
        # spawn, not fork: a forked child of a process whose torch thread pools exist can deadlock
        context, queue = multiprocessing.get_context("spawn"), list(owed.items())
        running: dict = {}  # the end of each worker's pipe -> the worker
        done, t0, interrupted = {}, time.perf_counter(), False
        try:
            while queue or running:
                while queue and len(running) < self.width:
                    worker = Worker.start(context, *queue.pop(0), resume, self.cpus_per_job)
                    running[worker.connection] = worker
                    if progress:
                        log(f"{worker.job.tag}: started in a worker process ({len(running)} of {self.width} running)")
                # the pipe, not the process: a worker blocks until its records are read
                for connection in multiprocessing.connection.wait(list(running)):
                    worker = running.pop(connection)
                    done[worker.index] = worker.outcome()
                    log_outcome(log, worker.job, done[worker.index], t0)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:  # a user error or Ctrl-C: the other workers stop (their checkpoints stay for a resume)
            for worker in running.values():  # Ctrl-C reached the workers too: they end on their own first
                worker.stop(grace=WORKER_GRACE_S if interrupted else 0.0)
        return done


def split_owed(jobs: Sequence[Job], log) -> tuple[dict[int, RunOutcome], dict[int, Job]]:
    """({index: skipped outcome} of the jobs with nothing owed, {index: job} of the others), once every results
    folder of the owed jobs is known to be writable: before training, so no finished job's record is lost."""
    owed = {i: job for i, job in enumerate(jobs) if job.todo}
    for folder in {job.cfg.results_path for job in owed.values()}:
        check_writable(folder)
    return {i: skip_job(job, log) for i, job in enumerate(jobs) if not job.todo}, owed


def append_written(job: Job, written: list[tuple[str, dict]]) -> None:
    """A finished task's records under the job's results folder, in the order the task made them."""
    for name, record in written:
        append_record(job.cfg.results_path / name, record)


def check_trains_on_cpu(job: Job) -> None:
    import torch

    device = for_model(job.entry, job.cfg).train.device
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        raise UserError(f"--executor processes runs CPU jobs side by side, and {job.entry.name} would train on "
                        f"CUDA (train.device={device}): run in turn (the default) or with --executor ray (a GPU "
                        f"each), or set train.device=cpu")


@dataclass(frozen=True)
class Worker:
    """A worker process running the job ``index`` of a suite, and the end of the pipe its result comes through."""
    index: int
    job: Job
    process: multiprocessing.process.BaseProcess
    connection: multiprocessing.connection.Connection

    @classmethod
    def start(cls, context, index: int, job: Job, resume: bool, threads: int) -> Worker:
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(target=worker_main, name=task_name(job), daemon=True,
                                  args=(sending, job, resume, threads, os.getcwd(), warnings.formatwarning))
        process.start()
        sending.close()  # the worker holds the only sending end: its death is an end of file here
        return cls(index, job, process, receiving)

    def stop(self, grace: float = 0.0) -> None:
        """End the worker: after ``grace`` seconds to end on its own, terminated."""
        self.process.join(grace)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()

    def outcome(self) -> RunOutcome:
        """Append the finished job's records under its results folder; a worker that died without answering
        is one ``failed`` row. A user error is raised."""
        try:
            result = self.connection.recv()
        except EOFError:
            self.process.join()
            code = self.process.exitcode
            cause = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return lost_job(self.job, WorkerDied(f"its worker process ended without its records ({cause})"))
        finally:
            self.connection.close()
        self.process.join()
        if isinstance(result, UserError):
            raise result
        outcome, written = result
        append_written(self.job, written)
        return outcome


def worker_main(sending, job: Job, resume: bool, threads: int, cwd: str, formatwarning=None) -> None:
    """A worker's body: the job's outcome and records, or the user error that stopped it. ``formatwarning``:
    the driver's (the command line's one-line warnings)."""
    warnings.formatwarning = formatwarning or warnings.formatwarning
    exit_with_parent()
    try:
        result = run_job_task(job, resume, threads, cwd)
    except UserError as e:  # as a plain UserError: a subclass's own __init__ may not unpickle
        result = UserError(str(e))
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the terminal: the driver says it, once
        return
    sending.send(result)
    sending.close()


def exit_with_parent(poll_s: float = PARENT_POLL_S) -> threading.Thread:
    """End this process as soon as the process that started it is gone (it is then adopted: another parent
    id). A thread polls for that, so this works wherever the driver died without stopping its workers; the
    run's last checkpoint stands (checkpoints are written atomically) and the next run of the suite resumes it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)  # no cleanup to run: the driver that would read this worker's records is gone

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


class WorkerDied(RuntimeError):
    """A worker process that ended without sending its job's records."""


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
        outcomes, owed = split_owed(jobs, log)
        if owed:
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
    append_written(job, written)
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

