from dataclasses import replace

import numpy as np
import pytest
import torch

from ocrbench.config import TrainConfig
from ocrbench.harness import train as train_mod
from ocrbench.harness.checkpoint import load_model
from ocrbench.harness.train import BatchOrder, TrainingDiverged, one_cycle_factor, train
from ocrbench.models import create_model

HEIGHT = 32


def tiny_cfg(**kw):
    return TrainConfig(**{"steps": 12, "batch_size": 4, "checkpoint_every": 4, "device": "cpu", "lr": 3e-3,
                          "augment": True, **kw})


def make_model(seed=0):
    torch.manual_seed(seed)
    return create_model("crnn_tiny", input_height=HEIGHT)


def test_one_cycle_warms_up_then_anneals():
    total = 100
    lrs = [one_cycle_factor(s, total, 0.2) for s in range(total)]
    assert lrs[0] == pytest.approx(1 / 25)
    assert max(lrs) == pytest.approx(1.0, abs=1e-6) and lrs.index(max(lrs)) == 20
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:]))
    assert lrs[-1] < 1e-3


def test_batch_order_is_deterministic_and_resumable():
    full = BatchOrder(10, 3, seed=1)
    first = [b for _, b in zip(range(9), full)]
    again = [b for _, b in zip(range(9), BatchOrder(10, 3, seed=1))]
    resumed = [b for _, b in zip(range(4), BatchOrder(10, 3, seed=1, start_step=5))]
    assert first == again and resumed == first[5:9]
    epoch = [i for b in first[:3] for i, _ in b]
    assert len(set(epoch)) == 9  # no repeats within an epoch


def test_width_batching_sees_every_line_once_per_epoch_with_less_padding():
    widths = np.random.default_rng(0).integers(50, 800, size=1000)
    order = BatchOrder(1000, 16, seed=3, widths=widths)
    epoch = [[i for i, _ in b] for _, b in zip(range(order.per_epoch), order)]
    assert sorted(i for b in epoch for i in b) == sorted(order.epoch_batches(0).ravel().tolist())
    assert len({i for b in epoch for i in b}) == 62 * 16  # no repeats, the ragged 8 lines dropped

    def padding(batches):
        return np.mean([1 - widths[b].sum() / (widths[b].max() * len(b)) for b in batches])

    random = [[i for i, _ in b] for _, b in zip(range(62), BatchOrder(1000, 16, seed=3))]
    assert padding(epoch) < 0.1 < 0.3 < padding(random)
    resumed = [b for _, b in zip(range(5), BatchOrder(1000, 16, seed=3, start_step=60, widths=widths))]
    assert resumed == [b for _, b in zip(range(65), BatchOrder(1000, 16, seed=3, widths=widths))][60:]


def test_the_padding_share_is_measured(rendered_lines, tmp_path):
    random = train(make_model(), rendered_lines, tiny_cfg(steps=4), tmp_path / "a", progress=False)
    by_width = train(make_model(), rendered_lines, tiny_cfg(steps=4, batching="width"), tmp_path / "b",
                     progress=False)
    assert 0 < by_width.padding_share < random.padding_share < 1


def test_resume_after_interruption_matches_uninterrupted_run(rendered_lines, tmp_path, monkeypatch):
    cfg = tiny_cfg()
    reference = make_model()
    train(reference, rendered_lines, cfg, tmp_path / "a", progress=False)

    real_step, calls = train_mod._train_step, {"n": 0}

    def dying_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # killed after the checkpoint at step 4, before the one at step 8
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_mod, "_train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(make_model(), rendered_lines, cfg, tmp_path / "b", config_hash="h", progress=False)
    monkeypatch.setattr(train_mod, "_train_step", real_step)
    resumed_model = make_model(seed=123)  # different init: everything must come from the checkpoint
    result = train(resumed_model, rendered_lines, cfg, tmp_path / "b", config_hash="h", resume=True,
                   progress=False)
    assert result.resumed_from == 4 and result.steps == 12
    for (name, a), b in zip(reference.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name


def test_resume_refuses_a_checkpoint_from_another_config(rendered_lines, tmp_path):
    train(make_model(), rendered_lines, tiny_cfg(steps=4), tmp_path, config_hash="one", progress=False)
    with pytest.raises(Exception, match="different configuration"):
        train(make_model(), rendered_lines, tiny_cfg(steps=4), tmp_path, config_hash="two", resume=True,
              progress=False)


def test_nan_loss_stops_with_a_clear_error(rendered_lines, tmp_path, monkeypatch):
    model = make_model()
    monkeypatch.setattr(model, "loss", lambda batch: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(TrainingDiverged, match="loss is nan at step 0"):
        train(model, rendered_lines, tiny_cfg(), tmp_path, progress=False)


def test_checkpoint_rebuilds_the_model(rendered_lines, tmp_path):
    model = make_model()
    train(model, rendered_lines, tiny_cfg(steps=2), tmp_path, progress=False)
    loaded = load_model(tmp_path / "checkpoint.pt")
    assert loaded.name == "crnn_tiny" and loaded.info.input_height == HEIGHT
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a.cpu(), b)


def test_time_limit_truncates_and_marks_the_run(rendered_lines, tmp_path, monkeypatch):
    """The run stops at the first step that ends past the limit (a fake clock: 1 s per reading, so the
    machine's load cannot change what is tested)."""
    clock = iter(range(10**6))
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: float(next(clock)))
    cfg = tiny_cfg(steps=100000, max_minutes=0.1)  # 6 s: each step reads the clock 3 times (2 s of training)
    result = train(make_model(), rendered_lines, cfg, tmp_path, progress=False)
    assert result.truncated and result.steps == 3  # a safety limit, not a budget: the run is marked
    assert result.seconds == 6.0


def test_a_truncated_run_finishes_when_the_limit_is_raised(rendered_lines, tmp_path, monkeypatch):
    """Rerun with the same limit: nothing more (the record stays truncated); with a raised limit: the run goes on
    from its checkpoint to the budget, and ends with the weights of a run never stopped."""
    clock = iter(range(10**6))
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: float(next(clock)))
    cfg = tiny_cfg(steps=8, max_minutes=0.1)
    stopped = train(make_model(), rendered_lines, cfg, tmp_path / "b", config_hash="h", progress=False)
    assert stopped.truncated and stopped.steps == 3
    again = train(make_model(), rendered_lines, cfg, tmp_path / "b", config_hash="h", resume=True, progress=False)
    assert again.truncated and again.steps == 3
    resumed = make_model(seed=123)
    done = train(resumed, rendered_lines, replace(cfg, max_minutes=60.0), tmp_path / "b", config_hash="h",
                 resume=True, progress=False)
    assert not done.truncated and done.steps == 8 and done.resumed_from == 3
    reference = make_model()
    train(reference, rendered_lines, replace(cfg, max_minutes=None), tmp_path / "a", progress=False)
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name


def test_a_finished_run_is_not_truncated(rendered_lines, tmp_path):
    result = train(make_model(), rendered_lines, tiny_cfg(steps=3, max_minutes=10.0), tmp_path, progress=False)
    assert result.steps == 3 and not result.truncated


def test_validation_curve_and_time_to_targets(rendered_lines, tmp_path):
    cers = iter([0.9, 0.4, 0.15])
    result = train(make_model(), rendered_lines, tiny_cfg(steps=6, eval_every=2), tmp_path, progress=False,
                   validate=lambda: next(cers))
    assert [(step, cer) for step, _, cer in result.val_curve] == [(2, 0.9), (4, 0.4), (6, 0.15)]
    hits = result.time_to_targets()
    assert hits["0.5"]["step"] == 4 and hits["0.2"]["step"] == 6 and hits["0.1"] is None


def test_same_config_and_seed_give_identical_weights(rendered_lines, tmp_path):
    """The budget is in steps: two runs of one config and seed are the same run (bit for bit on a CPU)."""
    a, b = make_model(), make_model()
    train(a, rendered_lines, tiny_cfg(steps=5), tmp_path / "a", progress=False)
    train(b, rendered_lines, tiny_cfg(steps=5), tmp_path / "b", progress=False)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_callbacks_see_every_step_validation_and_end_and_the_curve_has_lr(rendered_lines, tmp_path):
    from ocrbench.harness.callbacks import Callback

    class Counter(Callback):
        def __init__(self):
            self.calls = []

        def on_train_begin(self, model, state):
            self.calls.append(("begin", state.step))

        def on_step(self, model, state, loss, lr):
            self.calls.append(("step", state.step))

        def on_validate(self, model, state, cer):
            self.calls.append(("validate", state.step))

        def on_train_end(self, model, state):
            self.calls.append(("end", state.step))

    counter = Counter()
    result = train(make_model(), rendered_lines, tiny_cfg(steps=20, eval_every=10), tmp_path, progress=False,
                   validate=lambda: 0.5, callbacks=[counter])
    assert counter.calls[0] == ("begin", 0) and counter.calls[-1] == ("end", 20)
    assert [s for k, s in counter.calls if k == "step"] == list(range(1, 21))
    assert [s for k, s in counter.calls if k == "validate"] == [10, 20]
    steps, losses, lrs = zip(*result.history)
    assert steps == (10, 20) and all(loss > 0 for loss in losses)
    assert lrs[0] == pytest.approx(3e-3 * one_cycle_factor(9, 20, 0.15), rel=1e-3)  # the lr of step 10's update


def test_compile_wraps_the_loss_and_auto_workers_resolve(rendered_lines, tmp_path, monkeypatch):
    compiled = []

    def fake_compile(fn, **kwargs):
        compiled.append(kwargs)
        return fn

    monkeypatch.setattr(train_mod.torch, "compile", fake_compile)
    result = train(make_model(), rendered_lines, tiny_cfg(steps=2, compile=True), tmp_path, progress=False)
    assert result.steps == 2 and compiled == [{"dynamic": True}]
    assert train_mod.resolve_workers("auto", torch.device("cpu")) == 0
    assert train_mod.resolve_workers(3, torch.device("cpu")) == 3
    monkeypatch.setattr(train_mod.torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(train_mod, "usable_cores", lambda: 16)
    assert train_mod.resolve_workers("auto", torch.device("cuda")) == 7


def test_deterministic_mode_is_set_for_the_run_and_changes_no_cpu_result(rendered_lines, tmp_path):
    a = make_model()
    train(a, rendered_lines, tiny_cfg(steps=4), tmp_path / "a", progress=False)
    b = make_model()
    train(b, rendered_lines, tiny_cfg(steps=4, deterministic=True), tmp_path / "b", progress=False)
    try:
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(p, q), name  # a CPU run is bit-reproducible either way
    finally:
        train_mod.set_deterministic(False)


def test_usable_cores_follow_the_affinity_mask_not_the_machine(monkeypatch):
    """A job given 2 cores of 16 (taskset, SLURM, a Ray task's container) must size its pools to 2."""
    import os

    from ocrbench.data.cache import pool_size
    from ocrbench.runtime import usable_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert usable_cores() == 2 and pool_size(10_000, parallel_min=100) == 2 and pool_size(10, 100) == 1
