"""Data-parallel training (ocrbench.harness.distributed): the shard split, the one-process no-ops, gradient averaging
against a one-process run (two forked gloo ranks), and ``torchrun -m ocrbench train`` on the CPU: one record,
the one-process loss curve within tolerance, and resume after the whole job is killed."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from ocrbench.config import TrainConfig
from ocrbench.errors import UserError
from ocrbench.harness import distributed
from ocrbench.harness.train import BatchOrder, train
from ocrbench.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")
needs_distributed = pytest.mark.skipif(not torch.distributed.is_available(),
                                       reason="this torch build has no torch.distributed")

# Measured (see the README's "Data-parallel training"): the 2-process curve of TINY_RUN is within 2% of the
# 1-process one, the gap coming from BatchNorm statistics over each rank's half batch and from per-rank
# dropout streams. The tolerance leaves room for that, while a wrong gradient average (a sum instead of a
# mean, or only one rank's shard) moves the loss by far more.
CURVE_RTOL = 0.05


# ---- the shard split (no process group) -----------------------------------------------------------------------
def take(order, n: int) -> list:
    return [b for _, b in zip(range(n), order)]


def test_the_shards_of_each_global_batch_are_disjoint_and_make_it_up():
    full = take(BatchOrder(10, 4, seed=1), 7)
    shards = [take(BatchOrder(10, 4, seed=1, rank=r, world=2), 7) for r in range(2)]
    for step, batch in enumerate(full):
        a, b = shards[0][step], shards[1][step]
        assert len(a) == len(b) == 2 and not set(a) & set(b)
        assert sorted(a + b) == sorted(batch)  # the same (index, draw) keys: the same augmented lines


def test_a_resumed_shard_continues_its_batches():
    shard = take(BatchOrder(10, 4, seed=1, rank=1, world=2), 7)
    assert take(BatchOrder(10, 4, seed=1, start_step=3, rank=1, world=2), 4) == shard[3:]


def test_one_process_batches_are_unchanged_by_the_split():
    assert take(BatchOrder(10, 4, seed=1), 5) == take(BatchOrder(10, 4, seed=1, rank=0, world=1), 5)


def test_a_global_batch_that_does_not_split_evenly_is_one_clear_error():
    with pytest.raises(UserError, match="batch_size 6 is the global batch and must be divisible by the 4"):
        BatchOrder(10, 6, seed=0, world=4)


def test_without_torchrun_every_helper_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env("cpu") is False
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.agree(1.25, True) == (1.25, True)
    assert distributed.gather_rng_states() is None
    distributed.barrier()
    distributed.shutdown()


# ---- gradient averaging: two forked gloo ranks against one process -----------------------------------------------
def deterministic_model() -> nn.Module:
    """crnn_tiny without dropout and with BatchNorm replaced by identities: nothing depends on how a global
    batch is split, so two ranks must reproduce one process up to float summation order."""
    torch.manual_seed(0)
    model = create_model("crnn_tiny", input_height=32, dropout=0.0)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.BatchNorm2d):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, nn.Identity())
    return model


def exact_cfg() -> TrainConfig:
    return TrainConfig(steps=6, batch_size=4, checkpoint_every=3, device="cpu", lr=3e-3)


def _rank_main(rank: int, world: int, store: str, out_dir: str) -> None:
    from conftest import RenderedLines

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        train(deterministic_model(), RenderedLines(), exact_cfg(), out_dir, progress=False)
    finally:
        torch.distributed.destroy_process_group()


@needs_distributed
def test_two_ranks_train_the_weights_of_one_process(rendered_lines, tmp_path):
    one = deterministic_model()
    train(one, rendered_lines, exact_cfg(), tmp_path / "one", progress=False)

    fork = multiprocessing.get_context("fork")  # the ranks inherit the imported torch: no second start-up
    ranks = [fork.Process(target=_rank_main, args=(r, 2, str(tmp_path / "store"), str(tmp_path / "two")))
             for r in range(2)]
    for p in ranks:
        p.start()
    for p in ranks:
        p.join(timeout=120)
    assert [p.exitcode for p in ranks] == [0, 0]

    ckpt = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)
    assert ckpt["state"]["step"] == 6 and ckpt["state"]["finished"]
    for name, weight in one.state_dict().items():
        torch.testing.assert_close(ckpt["model"][name], weight, rtol=1e-4, atol=1e-5, msg=name)
    curve_one = [loss for _, loss, _ in train_curve(tmp_path / "one")]
    curve_two = [loss for _, loss, _ in ckpt["state"]["history"]]
    assert curve_two == pytest.approx(curve_one, rel=1e-4)


def train_curve(run: Path) -> list:
    return torch.load(run / "checkpoint.pt", weights_only=False)["state"]["history"]


# ---- torchrun -m ocrbench train, on the CPU (gloo) ------------------------------------------------------------
TINY_RUN = ["train", "--model", "crnn_tiny", "--steps", "30", "--batch-size", "8", "--device", "cpu", "--quiet",
            "--json", "--set", "data.train_size=64", "--set", "data.val_size=8", "--set", "data.test_size=16",
            "--set", "data.height=32", "--set", "train.checkpoint_every=5"]


def train_command(nproc: int, folder: Path) -> list[str]:
    launcher = [sys.executable]
    if nproc > 1:  # the torchrun module of this interpreter (the `torchrun` script may be another's)
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return [*launcher, "-m", "ocrbench", *TINY_RUN, "--out", str(folder / "runs"), "--results", str(folder / "results")]


def run_env(cache: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OCRBENCH_CACHE": str(cache)}


def run_to_the_end(nproc: int, folder: Path, env: dict) -> dict:
    """The one record of a finished run; stdout must be exactly rank 0's JSON (the other ranks say nothing)."""
    done = subprocess.run(train_command(nproc, folder), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    (record,) = json.loads(done.stdout)["records"]
    lines = (folder / "results" / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 1, lines  # rank 0 alone appends
    assert record["status"] == "ok" and record["steps"] == 30
    return record


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict:
    """The same tiny run in one process and in two (global batch 8 both times)."""
    # module scope runs before the per-test cache fixture: the same per-session cache, named here
    env = run_env(tmp_path_factory.getbasetemp() / "cache")
    return {n: run_to_the_end(n, tmp_path_factory.mktemp(f"nproc{n}"), env) for n in (1, 2)}


def losses(record: dict) -> list[float]:
    return [loss for _, loss, _ in record["train_curve"]]


@needs_distributed
def test_torchrun_two_processes_match_one_process_within_tolerance(cli_runs):
    one, two = cli_runs[1], cli_runs[2]
    assert [s for s, _, _ in two["train_curve"]] == [s for s, _, _ in one["train_curve"]] == [10, 20, 30]
    assert [lr for _, _, lr in two["train_curve"]] == [lr for _, _, lr in one["train_curve"]]
    assert losses(two) == pytest.approx(losses(one), rel=CURVE_RTOL)
    assert losses(two) != losses(one)  # really trained on two ranks (per-rank BatchNorm statistics differ)
    assert abs(two["cer"] - one["cer"]) <= 0.05
    assert two["world_size"] == 2 and one["world_size"] == 1 and two["resumed_from_step"] == 0
    assert two["config_hash"] != one["config_hash"]  # never averaged with, or resumed as, the one-process run


def kill_job(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and its workers, as a lost machine would: torchrun starts each worker in a session of
    its own, so killing torchrun alone would leave them training."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for pid in [proc.pid, *map(int, children)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


@needs_distributed
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's workers through /proc")
def test_a_killed_two_process_run_resumes_and_ends_where_the_uninterrupted_one_ends(tmp_path, cli_runs):
    env = run_env(Path(os.environ["OCRBENCH_CACHE"]))
    proc = subprocess.Popen(train_command(2, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    deadline = time.monotonic() + 240
    while not any((tmp_path / "runs").rglob("checkpoint.pt")):  # the first is at step 5 of 30
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.01)
    kill_job(proc)
    assert not (tmp_path / "results" / "runs.jsonl").exists()  # killed while training

    resumed = run_to_the_end(2, tmp_path, env)
    assert 0 < resumed["resumed_from_step"] < 30
    # every rank's dropout stream is in the checkpoint and gloo sums two ranks in a fixed order: exact
    reference = cli_runs[2]
    assert losses(resumed) == pytest.approx(losses(reference), rel=1e-6)
    assert resumed["cer"] == pytest.approx(reference["cer"], abs=1e-9)


def test_torchrun_with_a_batch_that_does_not_split_stops_before_building_anything(monkeypatch, capsys, tmp_path):
    from ocrbench.cli import main

    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc-per-node 3 would; no group is joined
    code = main(["train", "--model", "crnn_tiny", "--batch-size", "8", "--out", str(tmp_path / "runs"),
                 "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        "ocrbench: error: train.batch_size 8 is the global batch and must be divisible by the 3 processes "
        "(each takes batch_size / 3 lines a step)"]
    assert not (tmp_path / "runs").exists() and not distributed.is_initialized()


def test_the_number_of_processes_is_part_of_the_run_identity(monkeypatch):
    """A data-parallel run differs slightly (per-process BatchNorm): its rows must not be averaged with, or
    resumed as, the one-process run's. One process keeps the identity it always had."""
    from ocrbench.bench.identity import job_identity, run_hash
    from ocrbench.config import ModelEntry, load_suite

    cfg, entry = load_suite(None), ModelEntry("line_cnn_tiny")
    alone = run_hash(entry, cfg)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert run_hash(entry, cfg) != alone and job_identity(entry, cfg)["world_size"] == 2


def test_a_suite_under_torchrun_is_one_clear_error(monkeypatch, capsys):
    """Every rank would run the whole suite and append its own rows."""
    from ocrbench.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "only `ocrbench train` runs under torchrun" in err and "Traceback" not in err
