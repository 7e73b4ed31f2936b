"""Sanity checks: the uniform-loss formula (by brute force and through every model's own loss), the activation
and gradient statistics, PASS on healthy tiny models and WARN on broken initialisations, and the CLI."""

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ocrbench.cli import main
from ocrbench.config import DataConfig, TrainConfig
from ocrbench.data.charset import Charset
from ocrbench.datasets import create_dataset
from ocrbench.diagnostics.sanity import (
    PASS,
    WARN,
    ActivationRecorder,
    check_dead_units,
    check_gradients,
    check_initial_loss,
    ctc_alignments,
    probe,
    probe_batch,
    run_sanity,
    uniform_ctc_loss,
    uniform_loss,
    zero_gates,
)
from ocrbench.models import create_model, list_models

TINY = list_models("*_tiny", task="recognition")


@pytest.fixture(scope="module")
def synth_lines(tmp_path_factory):
    """Eight synthetic training lines: a probe batch like real training's (the rendered test lines leave
    the top rows of every line blank, so a stride-2 1x1 shortcut can see constant input)."""
    cfg = DataConfig(height=32, train_size=8, cache_dir=str(tmp_path_factory.mktemp("cache")),
                     options={"max_chars": 8, "writers": ["timesi", "cursive"]})
    return create_dataset("synth-lines", "train", cfg)
CFG = TrainConfig(batch_size=4, lr=3e-3, device="cpu", augment=False)


def collapse(path) -> tuple:
    out, prev = [], None
    for c in path:
        if c != prev and c != 0:
            out.append(c)
        prev = c
    return tuple(out)


@pytest.mark.parametrize("frames, target", [(1, ()), (3, ()), (2, (1,)), (3, (1, 1)), (3, (1, 2)), (4, (1, 2)),
                                            (5, (2, 2, 1)), (2, (1, 2, 3))])
def test_ctc_alignments_match_brute_force(frames, target):
    classes = range(4)  # blank 0 and three labels: every path of length T is enumerated
    count = sum(collapse(p) == target for p in itertools.product(classes, repeat=frames))
    assert ctc_alignments(frames, target) == count


def test_uniform_ctc_loss_is_not_l_log_c_and_matches_torch():
    targets, frames, classes = [[1, 2, 2], [3], [4, 4, 4], [1, 2]], [9, 7, 4, 6], 5  # line 3 cannot fit: 0
    padded = torch.zeros(4, 3, dtype=torch.long)
    for i, t in enumerate(targets):
        padded[i, : len(t)] = torch.tensor(t)
    zeros = torch.zeros(max(frames), 4, classes).log_softmax(-1)
    torch_value = F.ctc_loss(zeros, padded, torch.tensor(frames), torch.tensor([len(t) for t in targets]),
                             blank=0, reduction="mean", zero_infinity=True)
    assert uniform_ctc_loss(frames, targets, classes) == pytest.approx(float(torch_value), rel=1e-5)
    # T=2, one label: paths "a-", "-a", "aa" -> 2 log C - log 3, not log C
    assert uniform_ctc_loss([2], [[1]], classes) == pytest.approx(2 * math.log(5) - math.log(3))


def zero_output_layers(model) -> None:
    """Uniform predictions through the model's own loss: the output layers (CTC classes, tokens) give zeros."""
    sizes = {model.charset.num_classes, getattr(model, "num_tokens", -1)}
    for m in model.modules():
        if isinstance(m, nn.Linear) and m.out_features in sizes:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)


@pytest.mark.parametrize("name, kwargs", [(n, {}) for n in TINY] + [("cnn_transformer_tiny", {"ctc_weight": 0.3})])
def test_uniform_loss_equals_the_models_loss_with_zero_logits(name, kwargs, rendered_lines):
    torch.manual_seed(0)
    model = create_model(name, Charset(), input_height=32, **kwargs)
    zero_output_layers(model)
    batch = probe_batch(model, rendered_lines, 8)
    model.eval()  # no dropout: the loss is exactly that of the zero logits
    with torch.no_grad():
        assert float(model.loss(batch)) == pytest.approx(uniform_loss(model, batch), rel=1e-5)


@pytest.mark.parametrize("name", TINY)
def test_a_healthy_tiny_model_passes_the_checks_at_init(name, synth_lines):
    torch.manual_seed(0)
    model = create_model(name, Charset(), input_height=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = run_sanity(model, synth_lines, CFG, steps=1, overfit_lines=2, overfit_cap=1)
    status = {c.name: c.status for c in report.checks}
    for check in ("initial loss", "gradients at init", "activations at init", "dead units at init"):
        assert status[check] == PASS, [c.reason for c in report.checks if c.name == check]
    assert "activations after 1 steps" in status
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # initial weights restored


def checks_at_init_scale(lines, factor: float) -> dict:
    """The init-time checks of a crnn_tiny whose conv and linear weights are scaled by ``factor``."""
    torch.manual_seed(0)
    model = create_model("crnn_tiny", Charset(), input_height=32)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear)):
                m.weight.mul_(factor)
    report = run_sanity(model, lines, CFG, steps=0, overfit_lines=2, overfit_cap=1)
    return {c.name: c for c in report.checks}


def test_zero_weights_warn_about_gradients_activations_and_dead_units(rendered_lines):
    status = checks_at_init_scale(rendered_lines, 0.0)
    assert status["gradients at init"].status == WARN and "vanishing" in status["gradients at init"].reason
    assert status["activations at init"].status == WARN and "collapsed" in status["activations at init"].reason
    assert status["dead units at init"].status == WARN and "100%" in status["dead units at init"].reason
    assert status["initial loss"].status == PASS  # zero logits are uniform: this check alone cannot see it


def test_a_huge_init_scale_warns_about_the_initial_loss_and_exploding_activations(rendered_lines):
    status = checks_at_init_scale(rendered_lines, 1e3)
    assert status["initial loss"].status == WARN and "confident" in status["initial loss"].reason
    assert status["activations at init"].status == WARN and "exploded" in status["activations at init"].reason


def test_overfitting_one_batch_passes_within_the_cap_and_warns_without_steps(rendered_lines):
    torch.manual_seed(0)
    model = create_model("line_cnn_tiny", Charset(), input_height=32)
    report = run_sanity(model, rendered_lines, CFG, steps=0, overfit_lines=2, overfit_cap=150)
    check = next(c for c in report.checks if c.name == "overfit one batch")
    assert check.status == PASS and check.value["steps"] <= 150, check.reason
    report = run_sanity(model, rendered_lines, CFG, steps=0, overfit_lines=2, overfit_cap=1)
    assert next(c for c in report.checks if c.name == "overfit one batch").status == WARN


class Net(nn.Module):
    def __init__(self, first: nn.Module):
        super().__init__()
        self.first, self.act = first, nn.ReLU()

    def forward(self, x):
        return self.act(self.first(x))


@pytest.mark.parametrize("first, x, dead_channels, units", [
    (nn.Conv2d(1, 4, 1), torch.rand(2, 1, 3, 5), [0, 2], 4),  # (B, C, H, W): channels
    (nn.Conv1d(1, 4, 1), torch.rand(2, 1, 5), [1], 4),  # (B, C, T): channels, known from the Conv1d before
    (nn.Linear(3, 5), torch.rand(2, 7, 3), [4], 5),  # (B, T, D): the last dimension
])
def test_dead_units_are_counted_per_channel(first, x, dead_channels, units):
    with torch.no_grad():
        first.weight.abs_()
        first.bias.fill_(0.1)
        first.bias[dead_channels] = -100.0  # inputs are in [0, 1): these units never fire
    with ActivationRecorder(Net(first)) as rec:
        Net.forward(rec.model, x)
    stats = rec.stats["act"]
    assert stats.alive.numel() == units and stats.dead == pytest.approx(len(dead_channels) / units)
    assert rec.stats["first"].dead is None and rec.stats["first"].std > 0


def test_zero_init_residual_gates_are_recognised_and_not_flagged(rendered_lines):
    model = create_model("resnet_ctc_tiny", Charset(), input_height=32)
    gates = zero_gates(model)
    assert gates and all(g.endswith("bn2") for g in gates)
    init = probe(model, probe_batch(model, rendered_lines, 4), backward=True)
    assert check_gradients(init["gradients"], gates).status == PASS
    assert check_gradients(init["gradients"]).status == WARN  # without the exemption, the gated branch vanishes


def test_check_rules_on_numbers():
    assert check_initial_loss(4.0, 4.2).status == PASS
    assert check_initial_loss(9.0, 4.2).status == WARN and check_initial_loss(1.0, 4.2).status == WARN
    assert check_initial_loss(float("nan"), 4.2).status == WARN
    rows = [{"layer": f"l{i}", "grad_norm": g} for i, g in enumerate([1.0, 2.0, 0.5, 1e-6])]
    assert check_gradients(rows).value["vanishing"] == ["l3"]
    rows[3]["grad_norm"] = float("inf")
    assert check_gradients(rows).value["exploding"] == ["l3"]
    acts = [{"layer": "a", "dead": 0.1}, {"layer": "b", "dead": 0.8}]
    assert check_dead_units(acts, "x").status == WARN and check_dead_units(acts[:1], "x").status == PASS


def test_sanity_cli_writes_its_report_and_refuses_a_detector(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("data: {name: synth-lines, height: 32, train_size: 8, val_size: 2, test_size: 2, "
                      "options: {max_chars: 6, writers: [timesi]}}\ntrain: {batch_size: 4, device: cpu}\n")
    out = tmp_path / "report"
    code = main(["sanity", "--model", "line_cnn_tiny", "--config", str(config), "--steps", "1", "--overfit-lines", "2",
                 "--overfit-cap", "1", "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and {c["check"] for c in result["checks"]} >= {"initial loss", "overfit one batch",
                                                                   "dead units after 1 steps"}
    assert all(c["status"] in (PASS, WARN) and c["reason"] for c in result["checks"])
    assert (out / "sanity.md").read_text().startswith("# Sanity checks: line_cnn_tiny")
    assert json.loads((out / "sanity.json").read_text())["model"] == "line_cnn_tiny"
    assert main(["sanity", "--model", "yolo_lines_tiny"]) == 2
    assert "checks line recognizers" in capsys.readouterr().err
