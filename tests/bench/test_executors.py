"""The parallel executors (worker processes, Ray): the same rows as the sequential run, a killed worker is a
failed row that a rerun resumes, records written by the driver only, one clear line for a mistake, and without
Ray. One local Ray instance (2 CPUs) serves the Ray tests; the others run without it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ocrbench.bench import executors
from ocrbench.bench.executors import (
    ProcessExecutor,
    RayExecutor,
    job_resources,
    make_executor,
    run_job_task,
    task_name,
)
from ocrbench.bench.identity import run_dir, with_seed
from ocrbench.bench.suite import Job, plan_suite, run_suite
from ocrbench.cli import main
from ocrbench.config import ModelEntry, load_suite
from ocrbench.errors import UserError
from ocrbench.records import read_records

pytestmark = pytest.mark.usefixtures("one_thread")  # the sequential run on one thread, like each task

# 2 tiny models x 2 seeds, as in tests/test_faults.py's TINY_SUITE
TINY = {"name": "ray", "seeds": 2, "profile": False, "models": ["line_cnn_tiny", "crnn_tiny"],
        "data": {"name": "synth-lines", "height": 32, "train_size": 64, "val_size": 8, "test_size": 16,
                 "options": {"max_chars": 6}},
        "train": {"steps": 30, "batch_size": 8, "checkpoint_every": 5, "device": "cpu", "eval_every": 30}}
# what must not depend on where a job ran (run_id, time and seconds do)
SAME = ("model", "seed", "decoder", "config_hash", "status", "cer", "wer", "steps", "final_loss", "train_curve")


def tiny_suite(tmp: Path, name: str, **changes):
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(TINY))
    cfg = load_suite(path, {"results_dir": str(tmp / name / "results"), "runs_dir": str(tmp / name / "runs")})
    return replace(cfg, **changes)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    # OMP_NUM_THREADS=1: the tasks compute like the sequential run on one thread (bit-identical losses)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def comparable(rows: list[dict]) -> list[tuple]:
    return sorted(tuple(str(r.get(k)) for k in SAME) for r in rows)


def test_ray_gives_the_rows_of_the_sequential_run(local_ray, tmp_path):
    sequential, on_ray = tiny_suite(tmp_path, "sequential"), tiny_suite(tmp_path, "ray")
    seq_log, ray_log = [], []
    t0 = time.perf_counter()
    run_suite(sequential, progress=False, log=seq_log.append)
    t1 = time.perf_counter()
    outcomes = run_suite(on_ray, progress=False, log=ray_log.append, executor=RayExecutor(cpus_per_job=1))
    t2 = time.perf_counter()
    print(f"4 tiny jobs: sequential {t1 - t0:.1f}s, Ray (2 CPUs) {t2 - t1:.1f}s", file=sys.stderr)
    assert [(o.model, o.seed, o.status) for o in outcomes] == [
        ("line_cnn_tiny", 0, "ok"), ("crnn_tiny", 0, "ok"), ("line_cnn_tiny", 1, "ok"), ("crnn_tiny", 1, "ok")]
    a, b = read_records(sequential.results_path / "runs.jsonl"), read_records(on_ray.results_path / "runs.jsonl")
    assert len(a) == len(b) == 4 and comparable(a) == comparable(b)
    assert len({r["run_id"] for r in b}) == 4 and all(r["threads"] == 1 for r in b)
    assert job_lines(ray_log) == job_lines(seq_log) and len(ray_log) == 4  # the same line for each job
    again = run_suite(on_ray, progress=False, log=lambda *_: None, executor=RayExecutor())
    assert {o.status for o in again} == {"skipped"} and len(read_records(on_ray.results_path / "runs.jsonl")) == 4


def job_lines(log: list[str]) -> dict[str, str]:
    """Job tag -> its log line up to the timings (which differ between runs)."""
    return dict(line.split("  (")[0].split(": ", 1) for line in log)


def test_a_killed_worker_is_a_failed_row_and_a_rerun_resumes_it(local_ray, tmp_path):
    cfg = tiny_suite(tmp_path, "killed")
    cfg = replace(cfg, train=replace(cfg.train, steps=150))  # a window of 145 steps after the first checkpoint
    victim = Job(cfg.models[0], with_seed(cfg, 1))
    killer = threading.Thread(target=kill_when_checkpointed, args=(victim, killed := []), daemon=True)
    killer.start()
    outcomes = run_suite(cfg, progress=False, log=lambda *_: None, executor=RayExecutor())
    killer.join()
    assert killed, "the job finished before its worker could be killed"
    status = {(o.model, o.seed): o.status for o in outcomes}
    assert status == {("line_cnn_tiny", 0): "ok", ("crnn_tiny", 0): "ok", ("line_cnn_tiny", 1): "failed",
                      ("crnn_tiny", 1): "ok"}
    (lost,) = [r for r in read_records(cfg.results_path / "runs.jsonl") if r["status"] == "failed"]
    assert (lost["model"], lost["seed"]) == ("line_cnn_tiny", 1) and "WorkerCrashedError" in lost["error"]

    rerun = run_suite(cfg, progress=False, log=lambda *_: None, executor=RayExecutor())
    assert [o.status for o in rerun] == ["skipped", "skipped", "ok", "skipped"]
    rows = read_records(cfg.results_path / "runs.jsonl")
    ok = [(r["config_hash"], r["decoder"]) for r in rows if r["status"] == "ok"]
    assert len(ok) == len(set(ok)) == 4  # every row once: nothing produced twice
    assert 0 < rerun[2].records[0]["resumed_from_step"] < 150  # continued from the killed job's checkpoint


def kill_when_checkpointed(job: Job, killed: list, timeout: float = 300.0) -> None:
    """SIGKILL the Ray worker running ``job`` once its first checkpoint is on disk (mid-training). The timeout is
    generous: on 2 cores shared with training jobs, Ray's start and the data took more than a minute."""
    checkpoint, title = run_dir(job.entry, job.cfg) / "checkpoint.pt", f"ray::{task_name(job)}".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not killed:
        if checkpoint.exists():
            for pid in worker_pids(title):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.005)


def worker_pids(title: bytes) -> list[int]:
    """Processes whose command line is ``title`` (Ray titles a worker ``ray::<task name>`` while it runs it)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().replace(b"\0", b" ").strip() == title:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_mistake_found_in_a_task_is_the_same_one_line_error(local_ray, tmp_path):
    cfg = tiny_suite(tmp_path, "mistake", models=(ModelEntry("yolo_lines_tiny"),), seeds=1)
    with pytest.raises(UserError, match="needs a page dataset"):  # raised in the worker, as without Ray
        run_suite(cfg, progress=False, log=lambda *_: None, executor=RayExecutor())
    assert not read_records(cfg.results_path / "runs.jsonl")


def test_a_task_returns_its_records_and_writes_no_results_file(tmp_path):
    cfg = tiny_suite(tmp_path, "task", models=(ModelEntry("line_cnn_tiny"),), seeds=1,
                     profile=True)  # profile rows too go back to the driver
    (job,) = plan_suite(cfg)
    outcome, written = run_job_task(job, True, 1, os.getcwd())
    assert outcome.status == "ok" and [name for name, _ in written].count("runs.jsonl") == 1
    assert {name for name, _ in written} == {"runs.jsonl", "profiles.jsonl"}
    assert not cfg.results_path.exists()  # the driver writes, not the task


def test_each_job_asks_for_a_gpu_only_when_it_trains_on_cuda(tmp_path):
    cfg = tiny_suite(tmp_path, "resources")
    job = lambda device: Job(cfg.models[0], replace(cfg, train=replace(cfg.train, device=device)))  # noqa: E731
    assert job_resources(job("cpu"), cluster_gpus=8, cpus_per_job=3) == {"num_gpus": 0, "num_cpus": 3}
    assert job_resources(job("auto"), cluster_gpus=0) == {"num_gpus": 0, "num_cpus": 1}
    assert job_resources(job("auto"), cluster_gpus=2)["num_gpus"] == 1
    assert job_resources(job("cuda"), cluster_gpus=2)["num_gpus"] == 1
    with pytest.raises(UserError, match="has no GPUs"):
        job_resources(job("cuda"), cluster_gpus=0)
    with pytest.raises(UserError, match="not cuda:1"):
        job_resources(job("cuda:1"), cluster_gpus=2)


def test_options_of_another_executor_are_refused():
    with pytest.raises(UserError, match="--address applies to --executor ray only"):
        make_executor("sequential", address="auto")
    with pytest.raises(UserError, match="--jobs applies to --executor processes only"):
        make_executor("ray", jobs=2)
    with pytest.raises(UserError, match="--cpus-per-job applies to --executor processes or ray only"):
        make_executor("sequential", cpus_per_job=2)
    with pytest.raises(UserError, match="--jobs must be >= 1"):
        make_executor("processes", jobs=0)
    assert make_executor("processes", cpus_per_job=1).width >= 1


def test_worker_processes_give_the_rows_of_the_sequential_run(tmp_path):
    """`ocrbench run --jobs 2`: two worker processes, the rows of the sequential run, each job's line once."""
    sequential, side_by_side = tiny_suite(tmp_path, "sequential"), tiny_suite(tmp_path, "processes")
    seq_log = []
    run_suite(sequential, progress=False, log=seq_log.append)
    argv = ["run", str(tmp_path / "suite.yaml"), "--jobs", "2", "--results", str(side_by_side.results_path),
            "--set", f"runs_dir={side_by_side.runs_dir}"]
    assert main([*argv, "--quiet"]) == 0
    a, b = (read_records(cfg.results_path / "runs.jsonl") for cfg in (sequential, side_by_side))
    assert len(a) == len(b) == 4 and comparable(a) == comparable(b)
    assert len({r["run_id"] for r in b}) == 4 and all(r["threads"] == 1 for r in b)
    log = []
    again = run_suite(side_by_side, progress=False, log=log.append, executor=ProcessExecutor(jobs=2))
    assert {o.status for o in again} == {"skipped"} and len(log) == 4


def test_a_killed_worker_process_is_a_failed_row_and_a_rerun_resumes_it(tmp_path, monkeypatch):
    cfg = tiny_suite(tmp_path, "killed", models=(ModelEntry("line_cnn_tiny"),), seeds=2)
    cfg = replace(cfg, train=replace(cfg.train, steps=150))  # a window of 145 steps after the first checkpoint
    started, start = [], executors.Worker.start
    monkeypatch.setattr(executors.Worker, "start", lambda *a: started.append(start(*a)) or started[-1])
    victim = Job(cfg.models[0], with_seed(cfg, 1))
    killer = threading.Thread(target=kill_process_when_checkpointed, args=(victim, started, killed := []),
                              daemon=True)
    killer.start()
    outcomes = run_suite(cfg, progress=False, log=lambda *_: None, executor=ProcessExecutor(jobs=2))
    killer.join()
    assert killed, "the job finished before its worker could be killed"
    assert [(o.seed, o.status) for o in outcomes] == [(0, "ok"), (1, "failed")]
    (lost,) = [r for r in read_records(cfg.results_path / "runs.jsonl") if r["status"] == "failed"]
    assert lost["seed"] == 1 and "killed by signal 9" in lost["error"]

    rerun = run_suite(cfg, progress=False, log=lambda *_: None, executor=ProcessExecutor(jobs=2))
    assert [o.status for o in rerun] == ["skipped", "ok"]
    assert 0 < rerun[1].records[0]["resumed_from_step"] < 150  # continued from the killed job's checkpoint


def kill_process_when_checkpointed(job: Job, started: list, killed: list, timeout: float = 300.0) -> None:
    """SIGKILL the worker process running ``job`` once its first checkpoint is on disk (mid-training)."""
    checkpoint, deadline = run_dir(job.entry, job.cfg) / "checkpoint.pt", time.monotonic() + timeout
    while time.monotonic() < deadline and not killed:
        workers = [w for w in started if w.job.seed == job.seed]
        if workers and checkpoint.exists():
            os.kill(workers[0].process.pid, signal.SIGKILL)
            killed.append(workers[0].process.pid)
        time.sleep(0.005)


def test_a_mistake_found_in_a_worker_process_is_one_line(tmp_path):
    cfg = tiny_suite(tmp_path, "mistake", models=(ModelEntry("yolo_lines_tiny"),), seeds=1)
    with pytest.raises(UserError, match="needs a page dataset"):  # raised in the worker, as in turn
        run_suite(cfg, progress=False, log=lambda *_: None, executor=ProcessExecutor(jobs=2))
    assert not read_records(cfg.results_path / "runs.jsonl")


def test_an_interrupted_worker_sends_nothing_and_prints_nothing(monkeypatch, capsys):
    """Ctrl-C reaches every process of the terminal: the driver prints the one line, a worker stays quiet."""
    def interrupted(*_):
        raise KeyboardInterrupt
    monkeypatch.setattr(executors, "run_job_task", interrupted)
    monkeypatch.setattr(executors, "exit_with_parent", lambda: None)  # this process's parent is pytest's shell
    receiving, sending = multiprocessing.Pipe(duplex=False)
    executors.worker_main(sending, None, True, 1, os.getcwd())
    assert not receiving.poll(0.1) and capsys.readouterr() == ("", "")


DRIVER = """
import multiprocessing, sys, time
import child

if __name__ == "__main__":
    worker = multiprocessing.get_context("spawn").Process(target=child.work, args=(sys.argv[1],), daemon=True)
    worker.start()
    time.sleep(600)
"""
CHILD = """
import os, time
from ocrbench.bench.executors import exit_with_parent

def work(pid_file):
    exit_with_parent(poll_s=0.05)
    open(pid_file, "w").write(str(os.getpid()))
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "\nState:\tZ" in status.read_text())


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_worker_process_ends_when_its_driver_is_killed(tmp_path):
    """SIGKILL (or SIGTERM) runs no cleanup in the driver: its workers must not train on, since a resumed suite
    would share their run folders."""
    import subprocess

    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "child.py").write_text(CHILD)
    pid_file = tmp_path / "worker.pid"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(pid_file)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        assert alive(worker)
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 30
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = alive(worker)
    if survived:  # leave no process behind when this fails
        os.kill(worker, signal.SIGKILL)
    assert not survived


def test_worker_processes_refuse_a_job_that_trains_on_cuda(tmp_path):
    cfg = tiny_suite(tmp_path, "cuda", seeds=1)
    cfg = replace(cfg, train=replace(cfg.train, device="cuda"))
    with pytest.raises(UserError, match="runs CPU jobs side by side"):
        run_suite(cfg, progress=False, log=lambda *_: None, executor=ProcessExecutor())


def test_the_ray_executor_without_ray_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    cfg = tiny_suite(tmp_path, "no-ray")
    code = main(["run", str(tmp_path / "suite.yaml"), "--executor", "ray", "--quiet",
                 "--results", str(cfg.results_path), "--set", f"runs_dir={cfg.runs_dir}"])
    err = capsys.readouterr().err
    assert code == 2 and err == "ocrbench: error: --executor ray needs Ray: pip install 'ocrbench[distributed]'\n"
    assert not Path(cfg.runs_dir).exists()  # refused before any training
