"""The troubleshooting checklist, automated: checks a fresh model before a long run is spent on it.

1. **Initial loss** against its value for uniform predictions (Karpathy's "verify loss @ init"). CTC's is not
   ``L log C``: with every frame uniform over C classes a line of T frames and label y scores
   ``T log C - log N(T, y)``, N the number of CTC paths that collapse to y, divided by |y| (PyTorch's
   ``reduction="mean"``) and averaged over the batch. The autoregressive models' label-smoothed token NLL is
   ``log V`` per token for V valid tokens (characters and end; padding and start are never predicted), mixed
   with the CTC value by ``ctc_weight`` when an auxiliary CTC head is trained.
2. **Overfit one batch**: steps until greedy CER 0 on a few training lines, within a step cap.
3. **Activation statistics** (fastai's ActivationStats): per layer the mean and standard deviation of its
   output and, for ReLU-like activations, the share of dead units (a channel whose output is <= 0 at every
   position of every line of the probe batch), at initialisation and after N training steps; a layer whose
   standard deviation collapses or explodes is flagged.
4. **Gradient norms** per layer at initialisation: vanishing (zero, or far below the median layer) or
   exploding (non-finite, or far above it).

Only generic ``nn.Module`` introspection (forward hooks, parameters) is used, plus the two loss definitions
of the recognizer base classes (:class:`~ocrbench.models._base.CTCRecognizer`,
:class:`~ocrbench.models._seq2seq.Seq2SeqRecognizer`) for the uniform loss.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..harness.metrics import cer
from ..harness.train import BatchOrder, make_optimizer, optimizer_step, train
from ..runtime import resolve_device

STEPS = 100  # training steps before the second activation probe
OVERFIT_LINES = 8  # lines of the batch to overfit ("a few examples", Karpathy's recipe)
OVERFIT_CAP = 300  # most steps allowed to reach CER 0 on them
OVERFIT_CHECK_EVERY = 10  # steps between greedy decodes of the batch
LOSS_TOLERANCE = 0.25  # relative distance of the initial loss from the uniform value that still passes
STD_MIN, STD_MAX = 1e-3, 1e2  # a layer output's std outside this range has collapsed / exploded
DEAD_MAX = 0.5  # share of dead units that flags an activation layer
GRAD_RATIO = 1e4  # a layer gradient norm this far below (above) the median layer's vanishes (explodes)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Mish)
# Modules whose 3-D outputs are (B, C, T), channel first; other 3-D outputs (Linear, LSTM) are (B, T, C).
CHANNEL_FIRST_3D = (nn.Conv1d, nn.BatchNorm1d, nn.InstanceNorm1d, nn.MaxPool1d, nn.AvgPool1d)

PASS, WARN = "PASS", "WARN"


# ---- the uniform loss --------------------------------------------------------------------------------------------
def ctc_alignments(frames: int, target: Sequence[int]) -> int:
    """N(T, y): the number of length-``frames`` CTC paths (blank 0) that collapse to ``target`` (exact)."""
    ext = [0]  # the label with blanks around and between its characters
    for c in target:
        ext += [c, 0]
    if frames == 0:
        return int(not target)
    alpha = [1, 1] + [0] * (len(ext) - 2) if target else [1]  # the first frame: blank, or the first label
    for _ in range(1, frames):
        alpha = [alpha[s] + (alpha[s - 1] if s else 0)
                 + (alpha[s - 2] if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2] else 0)
                 for s in range(len(ext))]
    return alpha[-1] + (alpha[-2] if target else 0)  # ending on the last label or the blank after it


def uniform_ctc_loss(frames: Sequence[int], targets: Sequence[Sequence[int]], num_classes: int) -> float:
    """PyTorch's ``ctc_loss(reduction="mean", zero_infinity=True)`` of uniform predictions: per line
    ``(T log C - log N(T, y)) / |y|`` (an impossible line counts 0), averaged over the lines."""
    values = []
    for t, y in zip(frames, targets, strict=True):
        n = ctc_alignments(int(t), list(y))
        values.append(0.0 if n == 0 else (t * math.log(num_classes) - math.log(n)) / max(1, len(y)))
    return float(np.mean(values))


def _targets(batch) -> list[list[int]]:
    return [batch.targets[i, : int(n)].tolist() for i, n in enumerate(batch.target_lengths)]


@torch.no_grad()
def uniform_loss(model, batch) -> float | None:
    """The training loss ``model.loss(batch)`` would have with uniform predictions; None for a model whose
    loss is neither the CTC nor the autoregressive base class's."""
    from ..models._base import CTCRecognizer
    from ..models._seq2seq import Seq2SeqRecognizer

    if isinstance(model, CTCRecognizer):
        logits = model.forward_batch(batch)
        frames = model.output_lengths(batch.widths).clamp(max=logits.shape[1]).tolist()
        return uniform_ctc_loss(frames, _targets(batch), logits.shape[-1])
    if isinstance(model, Seq2SeqRecognizer):
        value = math.log(model.num_tokens - int(model.never.sum()))
        if model.ctc_head is not None:
            memory = model.encode_batch(batch)
            frames = memory["lengths"].clamp(max=memory["features"].shape[1]).tolist()
            ctc = uniform_ctc_loss(frames, _targets(batch), model.charset.num_classes)
            value = (1 - model.ctc_weight) * value + model.ctc_weight * ctc
        return value
    return None


# ---- activation and gradient statistics ---------------------------------------------------------------------------
@dataclass
class LayerStats:
    name: str
    kind: str  # the module's class
    calls: int = 0
    count: int = 0
    running_mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    alive: torch.Tensor | None = None  # activations only: per unit, positive anywhere

    def add(self, t: torch.Tensor) -> None:
        """Merge the moments of ``t`` (Chan et al.'s parallel update: no cancellation when |mean| >> std)."""
        var, mean = torch.var_mean(t, correction=0)
        n, total = t.numel(), self.count + t.numel()
        delta = float(mean) - self.running_mean
        self.running_mean += delta * n / total
        self.m2 += float(var) * n + delta**2 * self.count * n / total
        self.calls, self.count = self.calls + 1, total

    @property
    def mean(self) -> float:
        return self.running_mean if self.count else float("nan")

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else float("nan")

    @property
    def dead(self) -> float | None:
        """Share of units whose output was <= 0 everywhere; None for a layer that is not an activation."""
        return None if self.alive is None else float(1.0 - self.alive.float().mean())

    def as_dict(self) -> dict:
        return {"layer": self.name, "kind": self.kind, "mean": self.mean, "std": self.std, "dead": self.dead,
                "units": None if self.alive is None else int(self.alive.numel()), "calls": self.calls}


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, nn.utils.rnn.PackedSequence):
        return out.data
    if isinstance(out, (tuple, list)) and out:
        return _first_tensor(out[0])
    return None


def watched_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers with parameters of their own, and activation functions that are modules."""
    return [(name, m) for name, m in model.named_modules()
            if name and (isinstance(m, ACTIVATIONS) or any(True for _ in m.parameters(recurse=False)))]


class ActivationRecorder:
    """Forward hooks that accumulate per-layer output statistics (over every call in the forward passes run
    while the recorder is active); a module's previous sibling decides whether a 3-D output is channel first."""

    def __init__(self, model: nn.Module):
        self.model, self.stats, self._hooks, self._last = model, {}, [], None

    def __enter__(self) -> ActivationRecorder:
        for name, m in watched_modules(self.model):
            self.stats[name] = LayerStats(name, type(m).__name__)
            self._hooks.append(m.register_forward_hook(self._hook(name, m)))
        for m in self.model.modules():  # remember the layer that ran last, for the activations' unit layout
            if not list(m.children()):
                self._hooks.append(m.register_forward_hook(self._track))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _track(self, module, _inputs, _out) -> None:
        self._last = module

    def _hook(self, name: str, module: nn.Module):
        def record(_m, _inputs, out) -> None:
            t = _first_tensor(out)
            if t is None or not t.is_floating_point():
                return
            t = t.detach().float()
            s = self.stats[name]
            s.add(t)
            if isinstance(module, ACTIVATIONS):
                self._record_alive(s, t)
        return record

    def _record_alive(self, s: LayerStats, t: torch.Tensor) -> None:
        channel_first = t.ndim >= 4 or (t.ndim == 3 and isinstance(self._last, CHANNEL_FIRST_3D))
        dim = 1 if channel_first else t.ndim - 1
        alive = (t > 0).transpose(0, dim).reshape(t.shape[dim], -1).any(dim=1).cpu()
        s.alive = alive if s.alive is None or s.alive.shape != alive.shape else s.alive | alive


NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def zero_gates(model: nn.Module) -> list[str]:
    """Normalisation layers whose scale starts at exactly 0 on purpose: the last norm of a residual branch
    ("zero-init residual", Goyal et al. 2017), so each block starts as the identity. Their output is 0 and
    the branch's other layers get no gradient at step 0, by design. Only a minority of the norm layers
    counts: when every norm layer is zero, the initialisation is broken, not gated."""
    norms = [(n, m) for n, m in watched_modules(model) if isinstance(m, NORMS) and m.weight is not None]
    zero = [n for n, m in norms if not bool(m.weight.detach().any())]
    return zero if len(zero) * 2 < len(norms) else []


def gated(layer: str, gates: Sequence[str]) -> bool:
    """Whether ``layer`` sits in the same block (parent module) as one of the zero-init ``gates``."""
    return any(layer.rpartition(".")[0] == g.rpartition(".")[0] for g in gates)


def gradient_norms(model: nn.Module) -> list[dict]:
    """Per layer (its own parameters), the L2 norm of the gradients present after a backward pass."""
    rows = []
    for name, m in watched_modules(model):
        grads = [p.grad.detach().float().reshape(-1) for p in m.parameters(recurse=False) if p.grad is not None]
        if grads:
            rows.append({"layer": name, "kind": type(m).__name__, "grad_norm": float(torch.cat(grads).norm())})
    return rows


def probe(model: nn.Module, batch, backward: bool = False) -> dict:
    """One training-mode forward of ``model.loss`` on ``batch`` with the activation hooks; with ``backward``
    also the per-layer gradient norms. Changes no weights (batch-norm running statistics do move)."""
    model.train()
    model.zero_grad(set_to_none=True)
    with ActivationRecorder(model) as rec, torch.set_grad_enabled(backward):
        loss = model.loss(batch)
    if backward:
        loss.backward()
    out = {"loss": float(loss.detach()), "layers": [s.as_dict() for s in rec.stats.values() if s.calls]}
    if backward:
        out["gradients"] = gradient_norms(model)
        model.zero_grad(set_to_none=True)
    return out


# ---- the checks ---------------------------------------------------------------------------------------------------
@dataclass
class Check:
    name: str
    status: str  # PASS or WARN
    reason: str
    value: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"check": self.name, "status": self.status, "reason": self.reason, **self.value}


def check_initial_loss(measured: float, expected: float | None, tolerance: float = LOSS_TOLERANCE) -> Check:
    value = {"measured": measured, "expected_uniform": expected}
    if expected is None:
        return Check("initial loss", PASS, "n/a: no uniform-prediction value is known for this model's loss", value)
    if not math.isfinite(measured):
        return Check("initial loss", WARN, f"the initial loss is {measured}", value)
    ratio = measured / expected if expected else float("inf")
    value["ratio"] = ratio
    if ratio > 1 + tolerance:
        return Check("initial loss", WARN, f"{measured:.3f} is {ratio:.2f}x the uniform value {expected:.3f}: the "
                     "untrained model makes confident predictions (initial weights or output scale too large)", value)
    if ratio < 1 - tolerance:
        return Check("initial loss", WARN, f"{measured:.3f} is only {ratio:.2f}x the uniform value {expected:.3f}: "
                     "an untrained model should not beat chance (a label leak, or a loss that is not per token?)",
                     value)
    return Check("initial loss", PASS, f"{measured:.3f} vs {expected:.3f} for uniform predictions "
                 f"(ratio {ratio:.2f}, within ±{tolerance:.0%})", value)


def check_activations(layers: Sequence[dict], when: str, gates: Sequence[str] = (), lo: float = STD_MIN,
                      hi: float = STD_MAX) -> Check:
    """Flags layers whose output std is outside [lo, hi]; the zero-init ``gates`` output 0 by design."""
    bad = [r for r in layers if not (lo <= r["std"] <= hi) and r["layer"] not in gates]  # NaN fails: flagged
    name = f"activations {when}"
    layers = [r for r in layers if r["layer"] not in gates]
    value = {"flagged": [{"layer": r["layer"], "std": r["std"]} for r in bad], "zero_init_gates": list(gates)}
    if bad:
        shown = ", ".join(f"{r['layer']} ({r['kind']}) std {r['std']:.2g}" for r in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        return Check(name, WARN, f"{len(bad)} of {len(layers)} layers have an output std outside [{lo:g}, {hi:g}] "
                     f"(collapsed or exploded): {shown}{more}", value)
    stds = [r["std"] for r in layers]
    gated_note = f"; {len(gates)} zero-init residual gates output 0 by design" if gates else ""
    return Check(name, PASS, f"every layer's output std in [{min(stds):.2g}, {max(stds):.2g}] "
                 f"({len(layers)} layers{gated_note})", value)


def check_dead_units(layers: Sequence[dict], when: str, limit: float = DEAD_MAX) -> Check:
    acts = [r for r in layers if r["dead"] is not None]
    name = f"dead units {when}"
    if not acts:
        return Check(name, PASS, "n/a: no activation modules (functional activations are not seen by hooks)")
    bad = [r for r in acts if r["dead"] > limit]
    worst = max(acts, key=lambda r: r["dead"])
    value = {"worst_layer": worst["layer"], "worst_dead": worst["dead"],
             "flagged": [{"layer": r["layer"], "dead": r["dead"]} for r in bad]}
    if bad:
        shown = ", ".join(f"{r['layer']} {r['dead']:.0%}" for r in bad[:5])
        return Check(name, WARN, f"{len(bad)} of {len(acts)} activation layers have over {limit:.0%} of their units "
                     f"dead (<= 0 for every input of the probe batch): {shown}", value)
    return Check(name, PASS, f"at most {worst['dead']:.0%} dead units per layer ({worst['layer']}; "
                 f"{len(acts)} activation layers)", value)


def check_gradients(rows: Sequence[dict], gates: Sequence[str] = (), ratio: float = GRAD_RATIO) -> Check:
    """Flags vanishing and exploding layer gradient norms, relative to the median layer. A zero gradient in the
    block of a zero-init gate is expected at step 0 and not flagged."""
    silent = [r["layer"] for r in rows if r["grad_norm"] == 0 and gated(r["layer"], gates)]
    rows = [r for r in rows if r["layer"] not in silent]
    norms = np.array([r["grad_norm"] for r in rows], dtype=np.float64)
    if not len(norms):
        return Check("gradients at init", WARN, "no layer received a gradient")
    finite = norms[np.isfinite(norms)]
    median = float(np.median(finite)) if len(finite) else float("nan")
    vanishing = [r for r in rows if math.isfinite(r["grad_norm"]) and r["grad_norm"] <= median / ratio]
    exploding = [r for r in rows if not math.isfinite(r["grad_norm"]) or r["grad_norm"] >= median * ratio]
    value = {"median": median, "vanishing": [r["layer"] for r in vanishing],
             "exploding": [r["layer"] for r in exploding], "gated": silent}
    problems = []
    if not median > 0:
        problems.append(f"the median layer gradient norm is {median:g}")
    if vanishing:
        problems.append(f"{len(vanishing)} vanishing (norm <= median/{ratio:g}): "
                        + ", ".join(f"{r['layer']} {r['grad_norm']:.2g}" for r in vanishing[:5]))
    if exploding:
        problems.append(f"{len(exploding)} exploding (norm >= median*{ratio:g} or not finite): "
                        + ", ".join(f"{r['layer']} {r['grad_norm']:.2g}" for r in exploding[:5]))
    if problems:
        return Check("gradients at init", WARN, f"of {len(rows)} layers: " + "; ".join(problems), value)
    gated_note = f"; {len(silent)} layers behind zero-init residual gates get none at step 0, by design" if silent else ""
    return Check("gradients at init", PASS, f"{len(rows)} layer norms in [{norms.min():.2g}, {norms.max():.2g}] "
                 f"(median {median:.2g}), none beyond {ratio:g}x the median{gated_note}", value)


def check_overfit(result: dict, cap: int) -> Check:
    if result["steps"] is not None:
        return Check("overfit one batch", PASS, f"greedy CER 0 on {result['lines']} training lines after "
                     f"{result['steps']} steps (loss {result['loss']:.3f})", result)
    return Check("overfit one batch", WARN, f"greedy CER still {result['cer']:.3f} on {result['lines']} training "
                 f"lines after {cap} steps (loss {result['loss']:.3f}): the model or its loss cannot fit even a "
                 "few lines (check the learning rate, the labels, the output lengths)", result)


# ---- running them -------------------------------------------------------------------------------------------------
def probe_batch(model, dataset, lines: int, seed: int = 0):
    """The first ``lines`` lines of the training order (no augmentation), collated for ``model``."""
    lines = min(lines, len(dataset))
    keys = next(iter(BatchOrder(len(dataset), lines, seed)))
    collate = model.collate
    return collate([dataset[i] for i, _ in keys])


@torch.no_grad()
def batch_cer(model, batch) -> float:
    model.eval()
    try:
        return cer(model.predict(batch.images, batch.widths, "greedy"), batch.texts)
    finally:
        model.train()


def overfit_batch(model, batch, cfg: TrainConfig, cap: int = OVERFIT_CAP, every: int = OVERFIT_CHECK_EVERY) -> dict:
    """Train on ``batch`` alone at the constant learning rate ``cfg.lr`` until its greedy CER is 0."""
    model.train()
    optimizer = make_optimizer(model, cfg)
    loss, value = None, float("nan")
    for step in range(1, cap + 1):
        loss = model.loss(batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            return {"steps": None, "cer": float("nan"), "loss": value, "lines": len(batch), "diverged_at": step}
        optimizer_step(model, loss, optimizer, None, cfg.grad_clip)
        if step % every == 0 or step == cap:
            error = batch_cer(model, batch)
            if error == 0:
                return {"steps": step, "cer": 0.0, "loss": value, "lines": len(batch)}
    return {"steps": None, "cer": error, "loss": value, "lines": len(batch)}


@dataclass
class SanityReport:
    model: str
    checks: list[Check]
    init: dict  # probe at initialisation: loss, layers, gradients
    trained: dict | None  # probe after ``steps`` training steps
    steps: int
    expected_loss: float | None

    @property
    def warnings(self) -> int:
        return sum(c.status == WARN for c in self.checks)

    def as_dict(self) -> dict:
        return {"model": self.model, "steps": self.steps, "warnings": self.warnings,
                "checks": [c.as_dict() for c in self.checks], "expected_initial_loss": self.expected_loss,
                "init": self.init, "trained": self.trained}


def run_sanity(model, dataset, cfg: TrainConfig, steps: int = STEPS, overfit_lines: int = OVERFIT_LINES,
               overfit_cap: int = OVERFIT_CAP) -> SanityReport:
    """Every check on ``model`` (freshly initialised) with training lines ``dataset`` and recipe ``cfg``.
    ``steps`` = 0 skips the second probe (after training). The model's initial weights are restored at the end."""
    device = resolve_device(cfg.device)
    model.to(device)
    initial = copy.deepcopy(model.state_dict())
    batch = probe_batch(model, dataset, cfg.batch_size, cfg.seed).to(device)
    try:
        init = probe(model, batch, backward=True)
        model.load_state_dict(initial)  # the probe moved batch-norm statistics
        expected = uniform_loss(model, batch)
        gates = zero_gates(model)
        checks = [check_initial_loss(init["loss"], expected), check_gradients(init["gradients"], gates),
                  check_activations(init["layers"], "at init", gates), check_dead_units(init["layers"], "at init")]
        small = probe_batch(model, dataset, overfit_lines, cfg.seed).to(device)
        checks.insert(1, check_overfit(overfit_batch(model, small, cfg, overfit_cap), overfit_cap))
        model.load_state_dict(initial)
        trained = None
        if steps:
            trained = _probe_after_training(model, dataset, cfg, steps, batch)
            checks += [check_activations(trained["layers"], f"after {steps} steps"),
                       check_dead_units(trained["layers"], f"after {steps} steps")]
    finally:
        model.load_state_dict(initial)
    return SanityReport(model.name, checks, init, trained, steps, expected)


def _probe_after_training(model, dataset, cfg: TrainConfig, steps: int, batch) -> dict:
    """``steps`` steps of the shared recipe (its one-cycle schedule over ``steps``), then a probe."""
    short = replace(cfg, steps=steps, checkpoint_every=steps, eval_every=0, max_minutes=None)
    with tempfile.TemporaryDirectory(prefix="ocrbench-sanity-") as tmp:
        result = train(model, dataset, short, tmp, progress=False)
    out = probe(model, batch)
    out["train_loss"] = result.final_loss
    return out


# ---- report text ----------------------------------------------------------------------------------------------------
def _fmt(x, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def layer_rows(report: SanityReport) -> list[dict]:
    """One row per layer: output mean/std/dead share at init and after training, gradient norm at init."""
    after = {r["layer"]: r for r in (report.trained or {}).get("layers", [])}
    grads = {r["layer"]: r["grad_norm"] for r in report.init.get("gradients", [])}
    rows = []
    for r in report.init["layers"]:
        a = after.get(r["layer"], {})
        rows.append({"layer": r["layer"], "kind": r["kind"], "mean": r["mean"], "std": r["std"], "dead": r["dead"],
                     "mean_after": a.get("mean"), "std_after": a.get("std"), "dead_after": a.get("dead"),
                     "grad_norm": grads.get(r["layer"])})
    return rows


def checks_text(report: SanityReport) -> list[str]:
    width = max(len(c.name) for c in report.checks)
    return [f"{c.status}  {c.name:<{width}}  {c.reason}" for c in report.checks]


def activation_table_text(report: SanityReport) -> list[str]:
    """The activation layers only (the full per-layer table is in sanity.md)."""
    rows = [r for r in layer_rows(report) if r["dead"] is not None]
    if not rows:
        return []
    width = max([len(r["layer"]) for r in rows] + [len("activation layer")])
    after = f"after {report.steps}" if report.trained else "after (skipped)"
    out = [f"{'activation layer':<{width}}  {'kind':<9} {'std init':>8} {'dead init':>9} {'std ' + after:>14} "
           f"{'dead ' + after:>15}"]
    for r in rows:
        out.append(f"{r['layer']:<{width}}  {r['kind']:<9} {_fmt(r['std']):>8} {_fmt(r['dead'], '.0%'):>9} "
                   f"{_fmt(r['std_after']):>14} {_fmt(r['dead_after'], '.0%'):>15}")
    return out


def sanity_markdown(report: SanityReport) -> str:
    """sanity.md: the checks and the full per-layer table (derived from sanity.json's content)."""
    out = [f"# Sanity checks: {report.model}", "", "| status | check | reason |", "|---|---|---|"]
    out += [f"| {c.status} | {c.name} | {c.reason.replace('|', '/')} |" for c in report.checks]
    after = f"after {report.steps} steps" if report.trained else "after training (skipped)"
    out += ["", f"Expected initial loss for uniform predictions: {_fmt(report.expected_loss, '.4f')}; measured "
            f"{report.init['loss']:.4f}.", "",
            f"## Layers (output statistics on the probe batch at init and {after}; gradient norm at init)", "",
            "| layer | kind | mean | std | dead | mean after | std after | dead after | grad norm |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in layer_rows(report):
        out.append(f"| {r['layer']} | {r['kind']} | {_fmt(r['mean'])} | {_fmt(r['std'])} | {_fmt(r['dead'], '.0%')} | "
                   f"{_fmt(r['mean_after'])} | {_fmt(r['std_after'])} | {_fmt(r['dead_after'], '.0%')} | "
                   f"{_fmt(r['grad_norm'])} |")
    out += ["", "Dead: share of a ReLU-like layer's units (channels) that are <= 0 at every position of every probe "
            "line. Thresholds: " + f"std outside [{STD_MIN:g}, {STD_MAX:g}], over {DEAD_MAX:.0%} dead units, a "
            f"gradient norm {GRAD_RATIO:g}x below or above the median layer, initial loss beyond "
            f"±{LOSS_TOLERANCE:.0%} of the uniform value."]
    return "\n".join(out) + "\n"
