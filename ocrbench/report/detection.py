"""The text-line detector leaderboard, derived from the ``task: detection`` records of ``runs.jsonl``.

``detector_leaderboard(runs)`` gives one row per (dataset, split, model, configuration, device): the metrics
averaged over seeds, the number of seeds and the 95% interval of AP@0.5; ``detector_markdown(runs)`` renders it as the
"Text-line detectors" section of ``leaderboard.md`` (empty string when there is no detector record).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from tabulate import tabulate

from .stats import ci_halfwidth

KEYS = ["dataset", "split", "model"]
# column in the records -> header in the Markdown table (shown when present in some record)
COLUMNS = {
    "model": "Model", "ap50": "AP@0.5", "ap": "AP@[.5:.95]", "f1": "F1@0.5", "p50": "P@0.5",
    "r50": "R@0.5", "ap50_ci": "AP@0.5 ± 95%", "n_runs": "Seeds", "params_m": "Params (M)",
    "gflops_per_page": "GFLOPs/page", "steps": "Steps", "train_seconds": "Train (s)",
    "train_pages_per_s": "Train pages/s", "eval_pages_per_s": "Pages/s", "peak_memory_mib": "Peak mem (MiB)",
    "activation_memory_mib": "Act. mem (MiB)", "precision": "Precision", "device_name": "Device",
}
THREE_DECIMALS = ("ap50", "ap", "f1", "p50", "r50", "ap50_ci")
ONE_DECIMAL = ("train_seconds", "train_pages_per_s", "eval_pages_per_s", "peak_memory_mib", "activation_memory_mib")


def _frame(runs: pd.DataFrame | Iterable[dict]) -> pd.DataFrame:
    return runs if isinstance(runs, pd.DataFrame) else pd.DataFrame(list(runs))


def detector_leaderboard(runs: pd.DataFrame | Iterable[dict]) -> pd.DataFrame:
    """``ok`` detection runs averaged over seeds per configuration, sorted by AP@0.5 within each dataset."""
    runs = _frame(runs)
    needed = {"task", "status", "ap50"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.DataFrame(columns=KEYS + ["ap50"])
    ok = runs[(runs["task"] == "detection") & (runs["status"] == "ok")].copy()
    if ok.empty:
        return pd.DataFrame(columns=KEYS + ["ap50"])
    ok["params_m"] = ok["params"] / 1e6
    ok["ap50"] = ok["ap50"].astype(float)
    keys = KEYS + [k for k in ("config_id", "device_name") if k in ok]  # never merge configs or devices
    ok[keys] = ok[keys].fillna("")
    metrics = [c for c in ("ap50", "ap", "f1", "p50", "r50", "train_pages_per_s", "eval_pages_per_s") if c in ok]
    first = ok.groupby(keys).first()
    means = ok.groupby(keys)[metrics].mean()
    stats = ok.groupby(keys)["ap50"].agg(n_runs="count", ap50_ci=ci_halfwidth)
    table = first.drop(columns=metrics).join(means).join(stats).reset_index()
    return table.sort_values(["dataset", "split", "ap50"], ascending=[True, True, False]).reset_index(drop=True)


def detector_markdown(runs: pd.DataFrame | Iterable[dict]) -> str:
    """The detector section of the leaderboard, one table per (dataset, split); "" without detector runs."""
    table = detector_leaderboard(runs)
    if table.empty:
        return ""
    parts = ["## Text-line detectors", "",
             "AP as in COCO (one class, 101-point interpolation, detections pooled over pages): AP@0.5 and "
             "AP@[.5:.95] (mean over IoU 0.50:0.05:0.95); precision, recall and F1 at IoU 0.5 at the model's "
             "score threshold. Pages/s: forward + NMS on the evaluation device, data loading excluded. "
             "Memory: peak CUDA memory of a training step on a GPU; on a CPU, the activations saved for "
             "backward (Act. mem). GFLOPs: one forward pass (2 x MACs) over a page of the model's size.", ""]
    for (dataset, split), group in table.groupby(["dataset", "split"], sort=False):
        parts += [f"### {dataset} ({split} split)", "", _table(group), ""]
    return "\n".join(parts)


def _table(group: pd.DataFrame) -> str:
    headers, rows = detector_cells(group)
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def detector_cells(group: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """(headings, rows of formatted cells) of one detector table: the Markdown table and the web page show these."""
    cols = [c for c in COLUMNS if c in group and group[c].notna().any()]
    shown = group[cols].copy().astype(object)
    for c in cols:
        if c in THREE_DECIMALS:
            fmt = "{:.3f}"
        elif c in ONE_DECIMAL:
            fmt = "{:.1f}"
        elif c in ("params_m", "gflops_per_page"):
            fmt = "{:.2f}"
        else:
            fmt = None
        shown[c] = [_cell(v, fmt) for v in group[c]]
    return [COLUMNS[c] for c in cols], shown.values.tolist()


def _cell(value, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    if fmt is None:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return fmt.format(float(value))
