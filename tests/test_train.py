import pytest
import torch

from ocrbench import train as train_mod
from ocrbench.config import TrainConfig
from ocrbench.models import create_model
from ocrbench.train import BatchOrder, TrainingDiverged, load_model, one_cycle_factor, train

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


def test_schedule_is_fitted_to_the_measured_speed():
    from ocrbench.train import TrainState, _fit_to_budget

    state = TrainState(step=10, total_steps=10_000, elapsed=6.0)  # 0.6 s/step, 60 s budget -> 90 more steps
    assert _fit_to_budget(state, TrainConfig(steps=10_000, max_minutes=1.0), start_step=0) == 100
    assert _fit_to_budget(state, TrainConfig(steps=50, max_minutes=1.0), start_step=0) == 50  # steps cap too


def test_time_budget_stops_training(rendered_lines, tmp_path):
    cfg = tiny_cfg(steps=100000, max_minutes=0.05)
    result = train(make_model(), rendered_lines, cfg, tmp_path, progress=False)
    assert 1 <= result.steps < 100000
    assert result.seconds < 0.05 * 60 + 5.0  # hard stop after the step that crosses the budget
