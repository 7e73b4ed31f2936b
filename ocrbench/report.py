"""Leaderboards derived from the run records (never edited by hand): Markdown, CSV, JSON and a plot."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .detection_report import detector_leaderboard, detector_markdown
from .records import RUNS_FILE, atomic_write_text, read_records

KEYS = ["dataset", "split", "model", "decoder"]
# column in the records -> header in the Markdown table
COLUMNS = {
    "model": "Model", "decoder": "Decoder", "cer": "CER", "cer_std": "CER ±", "wer": "WER", "n_runs": "Runs",
    "params_m": "Params (M)", "steps": "Steps", "train_seconds": "Train (s)", "train_lines_per_s": "Train lines/s",
    "decode_lines_per_s": "Decode lines/s", "precision": "Precision", "device_name": "Device",
    # cost at the reference shape, from results/profiles.jsonl (see join_profiles); Markdown-only text columns
    "gmacs_per_line": "GMACs/line †", "infer_lines_per_s_ref": "Infer lines/s †",
    "train_lines_per_s_ref": "Train lines/s †", "mem_train_md": "Mem train, ckpt off → on †", "mem_infer_md": "Mem infer †",
    "mfu_train": "MFU train †", "profile_setting": "Profiled at †",
}
PROFILES_FILE = "profiles.jsonl"
PROFILE_NOTE = ("† From `profiles.jsonl` (`ocrbench profile`, or the suite after training): synthetic lines at the "
                "reference shape (height × 16·height), median of timed steps after warm-up, in the stated precision "
                "and gradient-checkpointing setting. GMACs = 10⁹ multiply-accumulates of one forward pass per line "
                "(FLOPs = 2 × MACs; autoregressive models: per decoded line). Memory: CUDA peak allocated for the batch (MiB), "
                "or on a CPU the activations saved for backward per line; training without → with gradient "
                "checkpointing. MFU: training "
                "FLOP/s (3 × forward) over the GPU's dense peak; n/a on a CPU.")


def load_runs(results_dir: str | Path) -> pd.DataFrame:
    return pd.DataFrame(read_records(Path(results_dir) / RUNS_FILE))


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, split, model, decoder): the best run's numbers (lowest CER), plus the
    number of runs and the spread of CER across them (seeds)."""
    if runs.empty or "status" not in runs:
        return pd.DataFrame(columns=KEYS + ["cer"])
    ok = runs[runs["status"] == "ok"].copy()
    if "task" in ok:  # detectors have their own table (detection_report.py)
        ok = ok[ok["task"].fillna("recognition") == "recognition"]
    if ok.empty or "cer" not in ok:
        return pd.DataFrame(columns=KEYS + ["cer"])
    ok["params_m"] = ok["params"] / 1e6
    best = ok.loc[ok.groupby(KEYS)["cer"].idxmin()].set_index(KEYS)
    stats = ok.groupby(KEYS)["cer"].agg(n_runs="count", cer_std="std")
    table = best.join(stats).reset_index()
    return table.sort_values(["dataset", "split", "cer"]).reset_index(drop=True)


def load_profiles(results_dir: str | Path) -> pd.DataFrame:
    return pd.DataFrame(read_records(Path(results_dir) / PROFILES_FILE))


def join_profiles(table: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """Add cost columns to the leaderboard from profile rows: those of the same run (``config_hash``),
    else the latest of the same model; the setting matching the run's precision and checkpointing."""
    if table.empty or profiles.empty or "status" not in profiles:
        return table
    ok = profiles[profiles["status"] == "ok"]
    if ok.empty:
        return table
    extra = [_profile_columns(run, ok) for _, run in table.iterrows()]
    return pd.concat([table, pd.DataFrame(extra, index=table.index)], axis=1)


def _profile_columns(run: pd.Series, ok: pd.DataFrame) -> dict:
    rows = ok[ok["config_hash"] == run.get("config_hash")] if "config_hash" in ok else ok.iloc[:0]
    if rows.empty:
        rows = ok[ok["model"] == run["model"]]
    precision = run.get("precision") if isinstance(run.get("precision"), str) else "fp32"
    ckpt = bool(run.get("grad_checkpointing")) if pd.notna(run.get("grad_checkpointing")) else False

    def pick(mode: str, checkpointing: bool):
        sel = rows[(rows["mode"] == mode) & (rows["grad_checkpointing"].astype(bool) == checkpointing)]
        same = sel[sel["precision"] == precision]
        sel = same if not same.empty else sel
        return None if sel.empty else sel.sort_values("time").iloc[-1]

    infer, train, train_off, train_on = pick("infer", False), pick("train", ckpt), pick("train", False), pick(
        "train", True)
    first = next((r for r in (infer, train) if r is not None), None)
    if first is None:
        return {}

    def get(r, key):
        return r.get(key) if r is not None and pd.notna(r.get(key, float("nan"))) else None

    def per_line(r):
        saved = get(r, "saved_activation_mib")
        return None if saved is None else saved / r["batch_size"]

    macs = get(infer, "macs_per_line_infer") or get(train, "macs_per_line_infer")
    return {"gmacs_per_line": macs / 1e9 if macs else None, "infer_lines_per_s_ref": get(infer, "samples_per_s"),
            "train_lines_per_s_ref": get(train, "samples_per_s"),
            "mem_peak_train_mib": get(train_off, "mem_peak_allocated_mib"),
            "mem_peak_train_ckpt_mib": get(train_on, "mem_peak_allocated_mib"),
            "mem_peak_infer_mib": get(infer, "mem_peak_allocated_mib"),
            "saved_act_mib_per_line": per_line(train_off), "saved_act_mib_per_line_ckpt": per_line(train_on),
            "mfu_train": get(train, "mfu"), "mfu_infer": get(infer, "mfu"),
            "profile_precision": first["precision"], "profile_checkpointing": ckpt,
            "profile_shape": f"{int(first['height'])}x{int(first['width'])}",
            "profile_device": first.get("device_name"),
            "profile_batch": "/".join(str(int(b)) if b else "-" for b in (get(infer, "batch_size"),
                                                                              get(train, "batch_size")))}


def _cost_text(shown: pd.DataFrame, group: pd.DataFrame) -> None:
    """Markdown-only renderings of the profile columns (the CSV/JSON keep the numbers)."""
    def mem(peak, peak_on, off, on):
        if pd.notna(peak) or pd.notna(peak_on):
            return " → ".join("–" if pd.isna(v) else f"{v:.0f}" for v in (peak, peak_on)) + " MiB"
        if pd.notna(off) or pd.notna(on):
            return " → ".join("–" if pd.isna(v) else f"{v:.2f}" for v in (off, on)) + " MiB/line act."
        return "n/a"

    if "gmacs_per_line" not in group:
        return
    shown["gmacs_per_line"] = group["gmacs_per_line"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    for c in ("infer_lines_per_s_ref", "train_lines_per_s_ref"):
        shown[c] = group[c].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    shown["mem_train_md"] = [mem(*v) for v in zip(group["mem_peak_train_mib"], group["mem_peak_train_ckpt_mib"],
                                                   group["saved_act_mib_per_line"], group["saved_act_mib_per_line_ckpt"])]
    shown["mem_infer_md"] = group["mem_peak_infer_mib"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.0f} MiB")
    shown["mfu_train"] = group["mfu_train"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.1%}")
    shown["profile_setting"] = [
        "" if pd.isna(p) else f"{p}, ckpt {'on' if c else 'off'}, {s}, batch {b}"
        for p, c, s, b in zip(group["profile_precision"], group["profile_checkpointing"], group["profile_shape"],
                              group["profile_batch"])]


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty or "status" not in runs:
        return pd.DataFrame()
    failed = runs[runs["status"] == "failed"]
    return failed[[c for c in ["model", "dataset", "error", "time"] if c in failed]]


def markdown(table: pd.DataFrame, failed: pd.DataFrame, detectors: str = "") -> str:
    parts = ["# ocrbench leaderboard", "",
             "Generated by `ocrbench report` from `runs.jsonl`; do not edit by hand. CER/WER are corpus-level "
             "(total edits / total reference characters or words) on NFC-normalised text, case and punctuation "
             "kept. Best run per model; `CER ±` is the standard deviation over runs (seeds) when there are several.",
             ""]
    for (dataset, split), group in table.groupby(["dataset", "split"], sort=False):
        parts += [f"## {dataset} ({split} split)", "", _table(group), ""]
        if "gmacs_per_line" in group:
            parts += [PROFILE_NOTE, ""]
    if detectors:
        parts += [detectors, ""]
    if not failed.empty:
        parts += ["## Failed runs", "", tabulate(failed.values, headers=list(failed.columns), tablefmt="github"), ""]
    return "\n".join(parts)


def _table(group: pd.DataFrame) -> str:
    shown = group.copy()
    _cost_text(shown, group)
    cols = [c for c in COLUMNS if c in shown]
    shown = shown[cols]
    for c in ("cer", "wer", "cer_std"):
        if c in shown:
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    for c in ("params_m",):
        if c in shown:
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    for c in ("train_seconds", "train_lines_per_s", "decode_lines_per_s"):
        if c in shown:
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    return tabulate(shown.values, headers=[COLUMNS[c] for c in cols], tablefmt="github", disable_numparse=True)


def write_report(results_dir: str | Path, plot: bool = True) -> dict:
    """Write leaderboard.md/.csv/.json (and leaderboard.png when matplotlib is installed) into
    ``results_dir``; returns the paths written."""
    results_dir = Path(results_dir)
    runs = load_runs(results_dir)
    table = join_profiles(leaderboard(runs), load_profiles(results_dir))
    written = {}
    md, csv, js = (results_dir / f"leaderboard.{ext}" for ext in ("md", "csv", "json"))
    atomic_write_text(md, markdown(table, failures(runs), detector_markdown(runs)))
    _write_table(table, csv, js)
    written.update(markdown=str(md), csv=str(csv), json=str(js))
    detectors = detector_leaderboard(runs)
    if not detectors.empty:
        dcsv, djs = (results_dir / f"leaderboard_detectors.{ext}" for ext in ("csv", "json"))
        _write_table(detectors, dcsv, djs)
        written.update(detectors_csv=str(dcsv), detectors_json=str(djs))
    if plot and not table.empty:
        png = plot_leaderboard(table, results_dir / "leaderboard.png")
        if png:
            written["plot"] = str(png)
    return written


def _write_table(table: pd.DataFrame, csv: Path, js: Path) -> None:
    table = table.drop(columns=["examples"], errors="ignore")
    atomic_write_text(csv, table.to_csv(index=False))
    atomic_write_text(js, json.dumps(json.loads(table.to_json(orient="records")), indent=1))


def plot_leaderboard(table: pd.DataFrame, path: Path) -> Path | None:
    """CER against parameters and against training throughput, one point per model (best decoder)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:  # plotting is an optional extra: pip install ocrbench[plot]
        return None
    # one point per model (its best decoder), so labels stay readable
    best_per_model = table.loc[table.groupby("model")["cer"].idxmin()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (col, label) in zip(axes, [("params_m", "parameters (millions)"),
                                       ("train_lines_per_s", "training throughput (lines/s)")]):
        for _, row in best_per_model.iterrows():
            ax.scatter(row[col], row["cer"], s=40)
            ax.annotate(f"{row['model']} ({row['decoder']})", (row[col], row["cer"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("CER (lower is better)")
        ax.grid(alpha=0.3)
    title = ", ".join(sorted({f"{d} {s}" for d, s in zip(table['dataset'], table['split'])}))
    fig.suptitle(f"ocrbench: {title}")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
