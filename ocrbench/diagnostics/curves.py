"""Training curves from run records: loss and learning rate per step (``train_curve``) and validation CER per
step (``val_curve``), several runs on one plot.

A training run owes several records (one per decoder and evaluation set), all carrying the same curves; they
are read once per trained model (its ``config_hash``). Older records without ``train_curve`` still give their
validation curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UnknownNameError, UserError
from ..records import RUNS_FILE, read_records


@dataclass
class RunCurves:
    """The curves of one trained model."""

    label: str  # model/seed, plus what tells apart runs of one model and seed (a sweep trial, a config)
    model: str
    seed: int
    config_hash: str
    steps: list[int] = field(default_factory=list)  # of the training curve
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_cer: list[float] = field(default_factory=list)


def load_curves(results: str | Path | Sequence[str | Path], models: Sequence[str] | None = None) -> list[RunCurves]:
    """The curves of every trained model recorded in ``results`` (a folder with runs.jsonl, or several),
    optionally only of ``models``. Unknown model names list the recorded ones."""
    folders = [results] if isinstance(results, (str, Path)) else list(results)
    records = [r for folder in folders for r in _run_records(Path(folder))]
    recorded = sorted({r["model"] for r in records})
    for name in models or ():
        if name not in recorded:
            raise UnknownNameError("model", name, recorded)
    runs = _one_record_per_run(r for r in records if not models or r["model"] in models)
    curves = [_curves_of(r) for r in runs]
    return _disambiguate([c for c in curves if c.steps or c.val_steps])


def _run_records(folder: Path) -> list[dict]:
    path = folder / RUNS_FILE if folder.is_dir() else folder
    if not path.is_file():
        raise UserError(f"no run records at {path}: give the folder of a suite's results (with {RUNS_FILE})")
    # a pruned sweep trial's curves show where it stopped
    return [r for r in read_records(path) if r.get("status") in ("ok", "pruned") and r.get("kind") != "profile"]


def _one_record_per_run(records) -> list[dict]:
    """One record per trained model: the one with the longest curves (a resumed evaluation repeats them)."""
    best: dict[str, dict] = {}
    for r in records:
        key = r.get("config_hash") or r.get("run_id", "")
        if key not in best or _curve_points(r) > _curve_points(best[key]):
            best[key] = r
    return sorted(best.values(), key=lambda r: (r["model"], r.get("seed", 0), r.get("sweep_pass", 0), r.get("trial", -1)))


def _curve_points(record: dict) -> int:
    return len(record.get("train_curve") or ()) + len(record.get("val_curve") or ())


def _curves_of(record: dict) -> RunCurves:
    train = record.get("train_curve") or []
    val = record.get("val_curve") or []
    label = f"{record['model']}/seed {record.get('seed', 0)}"
    if "trial" in record:  # a sweep trial: pass and number tell apart the configurations of one model and seed
        label += f"/pass {record.get('sweep_pass', 1)} trial {record['trial']}"
    if record.get("status") == "pruned":
        label += " (pruned)"
    return RunCurves(label=label, model=record["model"], seed=record.get("seed", 0),
                     config_hash=record.get("config_hash", ""),
                     steps=[int(p[0]) for p in train], loss=[float(p[1]) for p in train],
                     lr=[float(p[2]) for p in train],
                     val_steps=[int(p[0]) for p in val], val_cer=[float(p[2]) for p in val])


def _disambiguate(curves: list[RunCurves]) -> list[RunCurves]:
    """Runs that would share a label (other configs of one model and seed) get their config hash appended."""
    counts: dict[str, int] = {}
    for c in curves:
        counts[c.label] = counts.get(c.label, 0) + 1
    for c in curves:
        if counts[c.label] > 1:
            c.label += f" ({c.config_hash[:6]})"
    return curves


def plot_curves(curves: Sequence[RunCurves], path: str | Path, title: str = "") -> Path:
    """Loss (log scale), learning rate and validation CER against the step, one line (one colour) per run."""
    if not curves:
        raise UserError("no training curves to plot: the records hold neither train_curve nor val_curve")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    colours = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    for i, c in enumerate(curves):
        style = {"color": colours(i % colours.N), "label": c.label, "linewidth": 1.3}
        if c.steps:
            axes[0].plot(c.steps, c.loss, **style)
            axes[1].plot(c.steps, c.lr, **style)
        if c.val_steps:
            axes[2].plot(c.val_steps, c.val_cer, marker="o", markersize=3, **style)
    _label_axes(axes, curves)
    legend_on = axes[0] if any(c.steps for c in curves) else axes[2]
    legend_on.legend(fontsize=7, ncol=2 if len(curves) > 6 else 1, loc="upper right")
    fig.suptitle(title or "training curves")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _label_axes(axes, curves: Sequence[RunCurves]) -> None:
    missing = not any(c.steps for c in curves)
    axes[0].set_ylabel("training loss")
    if not missing:
        axes[0].set_yscale("log")
    axes[1].set_ylabel("learning rate")
    if not missing:
        axes[1].set_yscale("log")  # runs of a sweep differ by ratios of the learning rate
    axes[2].set_ylabel("validation CER")
    axes[2].set_xlabel("optimizer step")
    axes[2].set_ylim(bottom=0)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    if missing:  # records written before train_curve existed: say so instead of an empty, unexplained panel
        for ax in axes[:2]:
            ax.set_yticks([])
            ax.text(0.5, 0.5, "no train_curve in these records", transform=ax.transAxes, ha="center",
                    va="center", color="grey")
