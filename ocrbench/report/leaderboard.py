"""Leaderboards derived from the run records (never edited by hand): Markdown, CSV, JSON and plots.

A leaderboard row is one configuration (model, decoder and its settings, data, recipe) on one device, its
seeds averaged: the mean CER, a 95% confidence interval (Student t over seeds), where the records carry
per-document counts a 95% interval over documents (a bootstrap of whole documents), and a rank in which rows
whose intervals overlap share the place. Rows of different configurations, dataset versions or devices are
never merged; runs stopped by the ``max_minutes`` safety limit are listed apart and never ranked. Several
results folders (tracks) make one page with the real-handwriting track first (:func:`write_combined_report`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from tabulate import tabulate

from ..errors import UserError
from ..records import NOT_DOWNLOADED_FILE, PROFILES_FILE, RUNS_FILE, atomic_write_text, read_records
from .detection import detector_leaderboard, detector_markdown
from .stats import ci_halfwidth, document_interval, t95, tie_aware_ranks
from .tracks import (
    agreement_markdown,
    efficiency_markdown,
    extra_sets,
    has_learning_curve,
    is_synthetic,
    long_cer,
    matrix_markdown,
    option_variants,
    variant_label,
    with_schedule,
)

# a leaderboard row: everything that must be equal for runs to be seeds of one configuration
GROUP = ["suite", "dataset", "split", "model", "decoder", "decoder_hash", "config_id", "data_version",
         "device_name"]
# rows ranked together, in one Markdown table
SECTION = ["suite", "dataset", "split", "data_version", "device_name"]
# the same configuration evaluated elsewhere (another dataset): joined as extra columns
EXTRA_JOIN = ["model", "decoder", "decoder_hash", "config_id", "device_name"]
TARGETS = ("0.5", "0.2", "0.1", "0.05")  # validation CER targets of the time-to-CER columns (train.CER_TARGETS)


def load_runs(results_dir: str | Path) -> pd.DataFrame:
    return pd.DataFrame(read_records(Path(results_dir) / RUNS_FILE))


def load_profiles(results_dir: str | Path) -> pd.DataFrame:
    return pd.DataFrame(read_records(Path(results_dir) / PROFILES_FILE))


def recognition_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The ``ok`` recognizer records, with every grouping column present."""
    if runs.empty or "status" not in runs or "cer" not in runs:
        return pd.DataFrame(columns=GROUP + ["cer", "seed", "train_dataset", "truncated"])
    ok = runs[runs["status"] == "ok"].copy()
    if "task" in ok:  # detectors have their own table (report/detection.py)
        ok = ok[ok["task"].fillna("recognition") == "recognition"]
    ok = ok[ok["cer"].notna()]
    for c in GROUP + ["train_dataset", "truncated"]:
        if c not in ok:
            ok[c] = None
    ok[GROUP] = ok[GROUP].fillna("").astype(str)
    ok["train_dataset"] = ok["train_dataset"].fillna(ok["dataset"])
    ok["truncated"] = ok["truncated"].fillna(False).astype(bool)
    return _without_superseded(ok)


def _without_superseded(ok: pd.DataFrame) -> pd.DataFrame:
    """Drop truncated records of a run that was continued later and recorded whole (a raised max_minutes)."""
    key = [c for c in ("config_hash", "seed", "dataset", "decoder", "decoder_hash") if c in ok]
    if "config_hash" not in key or not ok["truncated"].any():
        return ok
    whole = set(ok.loc[~ok["truncated"], key].astype(str).itertuples(index=False, name=None))
    finished = pd.Series([k in whole for k in ok[key].astype(str).itertuples(index=False, name=None)], index=ok.index)
    superseded = ok["truncated"] & finished
    return ok[~superseded]


NO_DOC_INTERVAL = {"cer_doc_lo": float("nan"), "cer_doc_hi": float("nan")}


def _per_seed(group: pd.DataFrame) -> pd.DataFrame:
    """The last record of each seed (a rerun replaces its seed's row)."""
    return group.drop_duplicates("seed", keep="last") if "seed" in group else group


def _doc_interval(group: pd.DataFrame) -> dict:
    """``cer_doc_lo``/``cer_doc_hi``: the document-bootstrap interval, NaN unless every seed's record has
    ``doc_errors``; no keys when no record has them (folders written before them keep their columns). The
    keys depend on the frame only, never on the group: groups with other keys would not make one table."""
    if "doc_errors" not in group:
        return {}
    per_seed = list(_per_seed(group)["doc_errors"])
    if not all(isinstance(d, dict) and d for d in per_seed):
        return dict(NO_DOC_INTERVAL)
    low, high = document_interval(per_seed)
    return {"cer_doc_lo": low, "cer_doc_hi": high}


def _aggregate(group: pd.DataFrame) -> pd.Series:
    """One leaderboard row from the seeds of one configuration (the last record per seed counts)."""
    group = _per_seed(group)
    first = group.iloc[0]
    row = {"cer": group["cer"].mean(), "cer_ci": ci_halfwidth(group["cer"]), "n": len(group),
           "wer": group["wer"].mean() if "wer" in group else float("nan"),
           "seeds": ",".join(str(int(s)) for s in sorted(group["seed"])) if "seed" in group else "",
           "cer_min": group["cer"].min(), "cer_max": group["cer"].max()}
    for c in ("params", "steps", "steps_budget", "batch_size", "precision", "train_dataset", "config_hash", "lr",
              "git", "torch", "threads", "train_lines", "train_lines_budget", "init_from", "charset", "data_options", "augmentation"):
        if c in group:
            row[c] = first[c]
    for c in ("train_lines_per_s", "decode_lines_per_s", "train_seconds", "data_wait_share", "padding_share"):
        if c in group:
            row[c] = group[c].mean()
    row.update(_doc_interval(group))
    row.update(_time_to_targets(group))
    return pd.Series(row)


def _time_to_targets(group: pd.DataFrame) -> dict:
    """Median over seeds of the steps and seconds to each validation CER target (NaN when a seed never got there)."""
    if "time_to_cer" not in group:
        return {}
    out = {}
    for target in TARGETS:
        hits = [t.get(target) if isinstance(t, dict) else None for t in group["time_to_cer"]]
        if all(hits):
            out[f"steps_to_{target}"] = float(pd.Series([h["step"] for h in hits]).median())
            out[f"seconds_to_{target}"] = float(pd.Series([h["seconds"] for h in hits]).median())
        else:
            out[f"steps_to_{target}"] = out[f"seconds_to_{target}"] = float("nan")
    return out


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration on its training dataset's test split: mean CER over seeds, 95% CI, n, a
    tie-aware rank, and the CER of the same configuration on each other evaluation set (``cer@NAME``)."""
    ok = recognition_rows(runs)
    main = ok[(ok["dataset"] == ok["train_dataset"]) & ~ok["truncated"]]
    if main.empty:
        return pd.DataFrame(columns=GROUP + ["cer", "cer_ci", "n", "rank"])
    table = main.groupby(GROUP, sort=False).apply(_aggregate, include_groups=False).reset_index()
    table["params_m"] = table["params"] / 1e6 if "params" in table else float("nan")
    table = _join_extra_sets(table, ok[ok["dataset"] != ok["train_dataset"]])
    parts = []
    for _, part in table.groupby(SECTION, sort=False):
        part = part.sort_values("cer").copy()
        part["rank"] = tie_aware_ranks(part["cer"], part["cer_ci"], _doc_intervals(part))
        part["tied"] = part["rank"].map(part["rank"].value_counts()) > 1
        parts.append(part.sort_values(["rank", "cer"], kind="stable"))
    return _with_variants(pd.concat(parts).reset_index(drop=True))


def _with_variants(table: pd.DataFrame) -> pd.DataFrame:
    """The ``variant`` column: what sets each row apart among all rows of its suite on its dataset, across its
    tables too (a generator option that changes the data also changes the data version, and so the table: a
    table of one row must still say which data it is)."""
    table["variant"] = ""
    for _, index in table.groupby([c for c in ("suite", "dataset") if c in table], sort=False).groups.items():
        table.loc[index, "variant"] = option_variants(table.loc[index])
    return table


def _doc_intervals(part: pd.DataFrame) -> list | None:
    if "cer_doc_lo" not in part:
        return None
    return list(zip(part["cer_doc_lo"], part["cer_doc_hi"]))


def _join_extra_sets(table: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    for name, rows in extra.groupby("dataset"):
        agg = rows.groupby(EXTRA_JOIN).agg(**{f"cer@{name}": ("cer", "mean"),
                                              f"cer_ci@{name}": ("cer", ci_halfwidth),
                                              f"n@{name}": ("cer", "count")}).reset_index()
        docs = rows.groupby(EXTRA_JOIN).apply(lambda g: pd.Series(_doc_interval(g) or NO_DOC_INTERVAL),
                                              include_groups=False)
        if docs.notna().any().any():  # only sets with per-document counts get the columns
            agg = agg.merge(docs.add_suffix(f"@{name}").reset_index(), on=EXTRA_JOIN, how="left")
        table = table.merge(agg, on=EXTRA_JOIN, how="left")
    return table


def truncated_runs(runs: pd.DataFrame) -> pd.DataFrame:
    ok = recognition_rows(runs)
    cut = ok[ok["truncated"] & (ok["dataset"] == ok["train_dataset"])]
    return cut[[c for c in ("results", "model", "decoder", "seed", "steps", "steps_budget", "cer", "device_name")
                if c in cut]]


# ---------------------------------------------------------------------------------------------- cost columns

def join_profiles(table: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """Add cost columns from profile rows: those of the same run (``config_hash``), else the latest of the
    same model; the setting matching the run's precision."""
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

    def pick(mode: str, checkpointing: bool):
        sel = rows[(rows["mode"] == mode) & (rows["grad_checkpointing"].astype(bool) == checkpointing)]
        same = sel[sel["precision"] == precision]
        sel = same if not same.empty else sel
        return None if sel.empty else sel.sort_values("time").iloc[-1]

    def get(r, key):
        return r.get(key) if r is not None and pd.notna(r.get(key, float("nan"))) else None

    infer, train_off, train_on = pick("infer", False), pick("train", False), pick("train", True)
    macs = get(infer, "macs_per_line_infer") or get(train_off, "macs_per_line_infer")
    return {"gmacs_per_line": macs / 1e9 if macs else None, "infer_lines_per_s_ref": get(infer, "samples_per_s"),
            "train_lines_per_s_ref": get(train_off, "samples_per_s"),
            "mem_peak_train_mib": get(train_off, "mem_peak_allocated_mib"),
            "mem_peak_train_ckpt_mib": get(train_on, "mem_peak_allocated_mib"),
            "saved_act_mib_per_line": _per_line(train_off, get), "saved_act_mib_per_line_ckpt": _per_line(train_on, get),
            "mfu_train": get(train_off, "mfu")}


def _per_line(r, get):
    saved = get(r, "saved_activation_mib")
    return None if saved is None else saved / r["batch_size"]


# ---------------------------------------------------------------------------------------------- Markdown

INTRO = ("Generated by `ocrbench report` from `runs.jsonl`; do not edit by hand. CER/WER are corpus level (total "
         "edits / total reference characters or words) on NFC-normalised text, case and punctuation kept. "
         "**CER** is the mean over seeds, **± 95%** the half-width of its 95% confidence interval (Student t "
         "over seeds; blank with one seed), **n** the number of seeds. **Rank** = 1 + the number of rows whose "
         "whole interval lies below this row's: rows whose intervals overlap share a rank (`=`). Rows of "
         "different configurations, dataset versions or devices are never merged. Budgets are optimizer steps "
         "(the same on every machine); *steps → CER x* is the median over seeds of the first training step at "
         "which the validation CER was at or below x.")
COST_NOTE = ("Cost columns come from `profiles.jsonl` (the suite profiles each model after training, at the "
             "reference shape height × 16·height): GMACs = 10⁹ multiply-accumulates of one forward pass per line "
             "(autoregressive models: per decoded line; LSTMs and attention counted). Memory: CUDA peak allocated "
             "in a training step, or on a CPU the activations saved for backward per line, without → with "
             "gradient checkpointing. Train lines/s is measured during the suite's own training (data loading "
             "included), on the device named in the heading; *Data wait %* is the share of that training time "
             "spent waiting for the next batch (loading and augmentation; above ~5% the loader starves the model, "
             "see `train.num_workers`).")


DOC_NOTE = ("**CER 95% (docs)**: the 95% percentile interval of the corpus CER when the test set's documents "
            "(pages) are drawn again with replacement (1,000 resamples, the same documents for every seed and "
            "every row; each resample's CER is the mean over seeds): how much the number depends on *which* "
            "pages were transcribed, which the seed interval cannot show. With both intervals, a row ranks below "
            "another only when its seed interval and its document interval both lie wholly above the other's: "
            "rows whose seed intervals overlap, or whose document intervals overlap, share a rank.")
PADDING_NOTE = ("*Padding %*: the share of the training batches' pixels that are padding (each line padded to the "
                "widest of its batch; `train.batching: width` groups lines of similar width).")
CHARSET_NOTE = "Reference characters outside the model's charset (it cannot write them: each counts as an error):"


def markdown(table: pd.DataFrame, runs: pd.DataFrame, detectors: str = "", missing: dict | None = None) -> str:
    """The leaderboard page; ``missing``: {evaluation set: download command} of the sets the last run skipped,
    shown where their column would be (never a silent blank)."""
    missing = missing or {}
    parts = ["# ocrbench leaderboard", "", INTRO, ""]
    if table.empty:
        parts += ["No finished recognizer runs yet.", ""] + missing_lines(missing)
    parts += _sections(table, runs, missing) + efficiency_markdown(table)
    return "\n".join(parts + _appendix(runs, [detectors] if detectors else []))


def _sections(table: pd.DataFrame, runs: pd.DataFrame, missing: dict, level: str = "##",
              source: str = "") -> list[str]:
    """One heading, recipe line, table and notes per (suite, dataset, split, data version, device)."""
    parts = []
    for keys, group in table.groupby(SECTION, sort=False):
        suite, dataset, split, version, device = keys
        parts += [f"{level} {dataset} ({split} split){f', suite {suite}' if suite else ''}", "",
                  f"{source}Device: {device or 'unknown'}; data version {version or 'n/a'}; {recipe_line(group)}.", "",
                  _table(group, missing), ""] + missing_lines(missing) + section_notes(group, runs)
    return parts


def section_notes(group: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """What the columns of one section's table mean (only the notes its columns need)."""
    parts = []
    for name in extra_sets(group):
        parts += [f"`CER {name}`: the same trained models evaluated on {name} (evaluation only: never used "
                  "for training, tuning or choosing a checkpoint).", ""]
    if _has(group, "cer_doc_lo"):
        parts += [DOC_NOTE, ""]
    parts += _charset_notes(group, runs)
    if "gmacs_per_line" in group:
        parts += [COST_NOTE, ""]
    if _has(group, "padding_share"):
        parts += [PADDING_NOTE, ""]
    return parts


def _has(group: pd.DataFrame, column: str) -> bool:
    return column in group and group[column].notna().any()


def _charset_notes(group: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """One line per evaluation set and set of missing characters, naming the models it applies to."""
    ok = recognition_rows(runs)
    if "charset_missing" not in ok:
        return []
    ok = ok[ok["config_id"].isin(set(group["config_id"])) & ok["device_name"].isin(set(group["device_name"]))]
    ok = ok[ok["charset_missing"].map(lambda d: isinstance(d, dict) and bool(d))]
    gaps: dict[tuple, list] = {}  # (evaluation set, missing characters) -> [reference characters, models...]
    for _, r in ok.drop_duplicates(["dataset", "model"]).iterrows():
        chars = tuple(sorted(r["charset_missing"].items(), key=lambda kv: (-kv[1], kv[0])))
        gaps.setdefault((r["dataset"], chars), [r.get("chars")]).append(r["model"])
    lines = [f"- {dataset}: {_missing_chars(chars, total)}; {', '.join(models)}"
             for (dataset, chars), (total, *models) in gaps.items()]
    return [CHARSET_NOTE, ""] + lines + [""] if lines else []


def _missing_chars(chars: tuple, total) -> str:
    shown = ", ".join(f"{c!r} ×{n}" for c, n in chars[:12]) + (", …" if len(chars) > 12 else "")
    count = sum(n for _, n in chars)
    share = f" ({100 * count / total:.2f}% of {int(total):,})" if pd.notna(total) and total else ""
    return f"{count} characters{share}: {shown}"


def _appendix(runs: pd.DataFrame, detectors: list[str]) -> list[str]:
    """Detector tables, truncated runs (not ranked) and failed runs, after the leaderboards."""
    parts = [line for text in detectors for line in (text, "")]
    cut = truncated_runs(runs)
    if not cut.empty:
        parts += ["## Truncated runs (not ranked)", "", "Stopped by the `train.max_minutes` safety limit before "
                  "their step budget: their CER is not comparable.", "",
                  tabulate(cut.values, headers=list(cut.columns), tablefmt="github"), ""]
    failed = failures(runs)
    if not failed.empty:
        parts += ["## Failed runs", "", tabulate(failed.values, headers=list(failed.columns), tablefmt="github"), ""]
    return parts


def missing_lines(missing: dict) -> list[str]:
    lines = [f"{name}: not downloaded — run `{command}`" for name, command in missing.items()]
    return lines + [""] if lines else []


def read_missing(results_dir: Path) -> dict:
    """{evaluation set: download command} that the last run of ``results_dir`` skipped (``{}``: none)."""
    path = results_dir / NOT_DOWNLOADED_FILE
    try:
        missing = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return missing if isinstance(missing, dict) else {}


def recipe_line(group: pd.DataFrame) -> str:
    first = group.iloc[0]
    revisions = sorted({str(v) for v in group["git"].dropna()}) if "git" in group else []
    git = ", ".join(revisions) if revisions else "?"  # rows made by different commits say so, not just the first's
    return f"{_schedules(group)}, {_plain(first.get('precision'))}, torch {_plain(first.get('torch'))}, git {git}"


def _plain(v):
    """A record's value as a reader writes it: ``?`` when missing, ``4000`` rather than ``4000.0``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "?"
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _schedules(group: pd.DataFrame) -> str:
    """``4000 steps of batch 4``, or every recipe of a section whose rows differ (the Model column says which)."""
    pairs = zip(group.get("steps", [None] * len(group)), group.get("batch_size", [None] * len(group)))
    return " or ".join(dict.fromkeys(f"{_plain(s)} steps of batch {_plain(b)}" for s, b in pairs))


def _fmt(v, spec: str, blank: str = "") -> str:
    return blank if v is None or (isinstance(v, float) and pd.isna(v)) else format(v, spec)


def _table(group: pd.DataFrame, missing: dict | None = None) -> str:
    cols = table_cells(group, missing)
    return tabulate(list(zip(*cols.values())), headers=list(cols), tablefmt="github", disable_numparse=True)


def table_cells(group: pd.DataFrame, missing: dict | None = None) -> dict[str, list[str]]:
    """{column heading: formatted cells} of one section's leaderboard table, row for row as ``group``: the
    Markdown table and the web page both show these."""
    cols = {"Rank": [f"={r}" if t else str(r) for r, t in zip(group["rank"], group["tied"])],
            "Model": [variant_label(r) for _, r in group.iterrows()], "Decoder": group["decoder"],
            "CER": [_fmt(v, ".4f") for v in group["cer"]], "± 95%": [_fmt(v, ".4f") for v in group["cer_ci"]]}
    if _has(group, "cer_doc_lo"):
        cols["CER 95% (docs)"] = [_span(lo, hi, ".4f") for lo, hi in zip(group["cer_doc_lo"], group["cer_doc_hi"])]
    cols.update({"n": group["n"].astype(int).astype(str), "WER": [_fmt(v, ".4f") for v in group["wer"]]})
    for name in extra_sets(group):
        cols[f"CER {name}"] = [_extra_cell(r, name) for _, r in group.iterrows()]
    for name in missing or {}:
        cols.setdefault(f"CER {name}", ["not downloaded"] * len(group))
    cols["Params (M)"] = [_fmt(v, ".3f") for v in group.get("params_m", [None] * len(group))]
    if "gmacs_per_line" in group:
        cols["GMACs/line"] = [_fmt(v, ".3f") for v in group["gmacs_per_line"]]
    if "mem_peak_train_mib" in group:
        cols["Mem train, ckpt off → on"] = [_memory(r) for _, r in group.iterrows()]
    cols["Train lines/s"] = [_fmt(v, ".0f") for v in group.get("train_lines_per_s", [None] * len(group))]
    if "data_wait_share" in group:
        cols["Data wait %"] = [_fmt(100 * v if pd.notna(v) else None, ".1f") for v in group["data_wait_share"]]
    if _has(group, "padding_share"):
        cols["Padding %"] = [_fmt(100 * v if pd.notna(v) else None, ".1f") for v in group["padding_share"]]
    for target in ("0.1", "0.05"):
        if f"steps_to_{target}" in group:
            cols[f"steps → CER {target}"] = [_fmt(v, ".0f", "–") for v in group[f"steps_to_{target}"]]
    cols["Decode lines/s"] = [_fmt(v, ".0f") for v in group.get("decode_lines_per_s", [None] * len(group))]
    return {k: list(v) for k, v in cols.items()}


def _span(low, high, spec: str) -> str:
    return "" if pd.isna(low) or pd.isna(high) else f"{low:{spec}}–{high:{spec}}"


def _extra_cell(r: pd.Series, name: str) -> str:
    """``0.800 ± 0.030`` on another evaluation set, and its document interval where the records have one."""
    ci = r[f"cer_ci@{name}"]
    cell = _fmt(r[f"cer@{name}"], ".3f") + (f" ± {ci:.3f}" if pd.notna(ci) else "")
    docs = _span(r.get(f"cer_doc_lo@{name}"), r.get(f"cer_doc_hi@{name}"), ".3f")
    return cell + (f" (docs {docs})" if docs else "")


def _memory(r: pd.Series) -> str:
    """CUDA peak memory of a training step, or on a CPU the activations saved for backward per line."""
    peak = (r.get("mem_peak_train_mib"), r.get("mem_peak_train_ckpt_mib"))
    if any(pd.notna(v) for v in peak):
        return " → ".join(_fmt(v, ".0f", "–") for v in peak) + " MiB"
    act = (r.get("saved_act_mib_per_line"), r.get("saved_act_mib_per_line_ckpt"))
    if any(pd.notna(v) for v in act):
        return " → ".join(_fmt(v, ".2f", "–") for v in act) + " MiB/line act."
    return "n/a"


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty or "status" not in runs:
        return pd.DataFrame()
    failed = runs[runs["status"] == "failed"]
    return failed[[c for c in ["results", "model", "seed", "dataset", "error", "time"] if c in failed]]


# ---------------------------------------------------------------------------------------------- files

def write_report(results_dir: str | Path, plot: bool = True) -> dict:
    """Write leaderboard.md/.csv/.json and leaderboard.png (and, with data-efficiency or transfer variants,
    learning_curve.png) into ``results_dir``; returns the paths written."""
    return write_folder_report(folder_report(results_dir), plot)


def write_folder_report(report: FolderReport, plot: bool = True) -> dict:
    """:func:`write_report` of a folder already read (the web page is made from the same report)."""
    results_dir, runs, table = report.folder, report.runs, with_schedule(report.table)
    written = _write_leaderboard(results_dir, table, markdown(table, runs, detector_markdown(runs), report.missing))
    detectors = detector_leaderboard(runs)
    if not detectors.empty:
        dcsv, djs = (results_dir / f"leaderboard_detectors.{ext}" for ext in ("csv", "json"))
        write_table(detectors, dcsv, djs)
        written.update(detectors_csv=str(dcsv), detectors_json=str(djs))
    return {**written, **_write_plots(results_dir, table, plot)}


class FolderReport(NamedTuple):
    folder: Path
    runs: pd.DataFrame
    table: pd.DataFrame  # the leaderboard, with cost columns
    missing: dict  # {evaluation set: download command} the folder's last run skipped


def folder_report(results_dir: str | Path) -> FolderReport:
    """A results folder's records and leaderboard (a clear error for a folder that is not one)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results folder not found: {results_dir} (it should hold {RUNS_FILE})")
    if not (results_dir / RUNS_FILE).is_file():
        raise UserError(f"no {RUNS_FILE} in {results_dir}: nothing to report; point --results at the folder a "
                        "`ocrbench run` or `train` wrote (default local/<suite>)")
    runs = load_runs(results_dir)
    table = join_profiles(leaderboard(runs), load_profiles(results_dir))
    return FolderReport(results_dir, runs, table, read_missing(results_dir))


def _write_leaderboard(out: Path, table: pd.DataFrame, text: str) -> dict:
    md, csv, js = (out / f"leaderboard.{ext}" for ext in ("md", "csv", "json"))
    atomic_write_text(md, text)
    write_table(table, csv, js)
    return {"markdown": str(md), "csv": str(csv), "json": str(js)}


def _write_plots(out: Path, table: pd.DataFrame, plot: bool, curves: pd.DataFrame | None = None) -> dict:
    """leaderboard.png of ``table`` and learning_curve.png of ``curves`` (default ``table``) when its
    same-budget rows span two line budgets or more; a plot that would not be drawn again is removed, so none
    contradicts the table."""
    curves = table if curves is None else curves
    drawn = {"plot": (out / "leaderboard.png", plot and not table.empty,
                      lambda path: _plots().plot_leaderboard(table, path)),
             "learning_curve": (out / "learning_curve.png", plot and has_learning_curve(curves),
                                lambda path: _plots().plot_learning_curves(long_cer(curves), path)),
             "variants": (out / "variants.png", plot and _has_option_variants(table),
                          lambda path: _plots().plot_variants(table[table["variant"] != ""], path))}
    written = {}
    for key, (path, wanted, draw) in drawn.items():
        if wanted:
            written[key] = str(draw(path))
        elif path.exists():
            path.unlink()
    return written


def _has_option_variants(table: pd.DataFrame) -> bool:
    """Whether rows differ in data options or augmentation, and another collection scores them (an ablation)."""
    return ("variant" in table and (table["variant"] != "").sum() > 1
            and any(c.startswith("cer@") for c in table.columns))


def _plots():
    from . import plots  # matplotlib is imported only when a plot is drawn

    return plots


# ---------------------------------------------------------------------------------------------- several folders

COMBINED_INTRO = ("This page joins several results folders (one suite each; rows of different folders, "
                  "configurations or machines are never merged). The real-handwriting track leads: models trained "
                  "on real handwritten pages, ranked on the test split of their own collection and scored out of "
                  "domain on the others. The synthetic track follows, as the smoke test it is.")
SYNTHETIC_NOTE = ("Synthetic lines show that a model trains and decodes end to end, and serve as pretraining; "
                  "their CER is not evidence about real handwriting (see the rank agreement above).")


def write_combined_report(folders, out: str | Path | None = None, plot: bool = True) -> dict:
    """One leaderboard for several results folders, written to ``out`` (default the first folder): the real
    track first, its data-efficiency and transfer tables, the cross-collection matrix and the rank agreement
    between the tracks, then the synthetic track; returns the paths written."""
    return write_combined_reports(folder_reports(folders), out, plot)


def folder_reports(folders) -> list[FolderReport]:
    """:func:`folder_report` of each folder (a folder given twice: once)."""
    return [folder_report(f) for f in dict.fromkeys(str(f) for f in folders)]


def write_combined_reports(reports: list[FolderReport], out: str | Path | None = None, plot: bool = True) -> dict:
    """:func:`write_combined_report` of folders already read."""
    out = Path(out) if out else reports[0].folder
    out.mkdir(parents=True, exist_ok=True)
    table = with_schedule(pd.concat([r.table.assign(results=str(r.folder)) for r in reports], ignore_index=True))
    written = _write_leaderboard(out, table, combined_markdown(reports))
    table = with_shared_model_costs(table)
    real = table[~synthetic_rows(table)]
    return {**written, **_write_plots(out, leading_rows(real if not real.empty else table), plot, curves=real)}


def leading_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``table``'s first results folder: the joined leaderboard's plot draws one suite, so that
    no point of one configuration (a longer schedule, a smaller data budget) stands beside another's."""
    return table[table["results"] == table["results"].iloc[0]] if not table.empty else table


# properties of the network, not of its training: one folder's profile of a model holds for its rows in the others
MODEL_COSTS = ("gmacs_per_line",)


def with_shared_model_costs(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each model's profiled cost filled into its rows from the folders that did not profile it
    (a joined plot's best row per family is often a fine-tune or a longer schedule), where the rows of that model
    on that collection (the same line height) agree on one value; otherwise left blank."""
    out = table.copy()
    for column in [c for c in MODEL_COSTS if c in out]:
        keys = [c for c in ("model", "train_dataset") if c in out]
        known = out.groupby(keys)[column].transform(lambda v: v.dropna().iloc[0] if v.dropna().nunique() == 1
                                                    else math.nan)
        out[column] = out[column].fillna(known)
    return out


def synthetic_rows(table: pd.DataFrame) -> pd.Series:
    """Rows trained on generated data (:func:`~ocrbench.report.tracks.is_synthetic`)."""
    if "train_dataset" not in table:  # an empty leaderboard
        return pd.Series(False, index=table.index)
    return table["train_dataset"].map(is_synthetic).astype(bool)


def combined_markdown(reports: list[FolderReport]) -> str:
    """The page of :func:`write_combined_report`."""
    tables = [r.table.assign(results=str(r.folder)) for r in reports]  # joined tables label recipes over all rows
    real = [t[~synthetic_rows(t)] for t in tables]
    points = long_cer(pd.concat(tables, ignore_index=True))
    parts = ["# ocrbench leaderboard", "", INTRO, "", COMBINED_INTRO, "", "## Real handwriting", ""]
    parts += _track_sections(reports, real, "No real-handwriting runs in these folders.")
    parts += efficiency_markdown(pd.concat(real, ignore_index=True), "###")
    parts += matrix_markdown(points) + agreement_markdown(points)
    parts += ["## Synthetic track (a smoke test)", "", SYNTHETIC_NOTE, ""]
    parts += _track_sections(reports, [t[synthetic_rows(t)] for t in tables], "No synthetic runs in these folders.")
    runs = pd.concat([r.runs.assign(results=str(r.folder)) for r in reports], ignore_index=True)
    return "\n".join(parts + _appendix(runs, [d for d in (detector_markdown(r.runs) for r in reports) if d]))


def _track_sections(reports: list[FolderReport], tables: list[pd.DataFrame], empty: str) -> list[str]:
    parts = []
    for report, table in zip(reports, tables):
        if not table.empty:  # a folder's own section labels the recipes its rows differ in (with_schedule)
            parts += _sections(with_schedule(table), report.runs, report.missing, "###", f"Results `{report.folder}`. ")
    return parts or [empty, ""]


def write_table(table: pd.DataFrame, csv: Path, js: Path) -> None:
    table = table.drop(columns=["examples"], errors="ignore")
    atomic_write_text(csv, table.to_csv(index=False))
    atomic_write_text(js, json.dumps(json.loads(table.to_json(orient="records")), indent=1))


# ---------------------------------------------------------------------------------------------- comparisons

MATCH = ["dataset", "split", "data_version", "model", "decoder", "decoder_hash", "config_id"]


def compare(new: pd.DataFrame, reference: pd.DataFrame, tolerance: float = 0.0) -> pd.DataFrame:
    """Each configuration of ``new`` beside the same configuration in ``reference`` (leaderboard tables).

    The difference of means is judged against its 95% interval (Welch when both sides have seeds, the
    reference's spread when only it has; with one run on each side, the runs must agree to 4 decimals):
    inside it the verdict is ``same``, outside it ``worse``/``better`` by how much beyond the interval.
    ``tolerance`` widens the interval (an absolute CER), for gates across machines."""
    cols = MATCH + ["cer", "cer_ci", "n", "cer_sd", "device_name", "label"]
    a, b = (_with_sd(t)[cols] for t in (new, reference))
    both = a.merge(b, on=MATCH, how="outer", suffixes=("", "_ref"), indicator=True)
    out = []
    for _, r in both.iterrows():
        keys = {**{k: r[k] for k in MATCH}, "label": r["label"] if isinstance(r["label"], str) else r["label_ref"]}
        if r["_merge"] != "both":
            out.append({**keys, "verdict": "only in new" if r["_merge"] == "left_only"
                        else "only in reference", "cer": r["cer"], "cer_ref": r["cer_ref"]})
            continue
        diff, margin = r["cer"] - r["cer_ref"], _margin(r) + tolerance
        beyond = abs(diff) - margin
        verdict = "same" if beyond <= 1e-9 else ("worse" if diff > 0 else "better")
        out.append({**keys, "cer": r["cer"], "n": int(r["n"]), "cer_ref": r["cer_ref"],
                    "cer_ci_ref": r["cer_ci_ref"], "n_ref": int(r["n_ref"]), "delta": diff, "margin": margin,
                    "verdict": verdict, "beyond": max(0.0, beyond), "device": r["device_name"],
                    "device_ref": r["device_name_ref"]})
    return pd.DataFrame(out)


def _with_sd(table: pd.DataFrame) -> pd.DataFrame:
    """The seeds' standard deviation, recovered from the interval half-width (NaN for one seed), and each row's
    label (its variant, for rows that differ by line budget or start only)."""
    table = table.copy()
    table["cer_sd"] = [h / t95(n - 1) * math.sqrt(n) if n > 1 else float("nan")
                       for h, n in zip(table["cer_ci"], table["n"])]
    table["label"] = [variant_label(r) for _, r in table.iterrows()]
    return table


def _margin(r: pd.Series) -> float:
    """Half-width of the 95% interval of (new mean - reference mean)."""
    n, m = int(r["n"]), int(r["n_ref"])
    s, s_ref = r["cer_sd"], r["cer_sd_ref"]
    if n > 1 and m > 1:  # Welch
        va, vb = s**2 / n, s_ref**2 / m
        if va + vb == 0:
            return 5e-5
        dof = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / (m - 1))
        return t95(max(1, int(dof))) * math.sqrt(va + vb)
    if m > 1 or n > 1:  # one side's spread stands for both
        sd, k = (s_ref, m) if m > 1 else (s, n)
        return t95(k - 1) * sd * math.sqrt(1 / n + 1 / m)
    return 5e-5  # one run each: equal to the fourth decimal


VERDICT_TEXT = {"same": "reproduced", "worse": "worse", "better": "better"}


def compare_markdown(delta: pd.DataFrame, new_label: str = "new", ref_label: str = "reference",
                     words: dict | None = None) -> str:
    """The delta table as Markdown: CER on both sides, the difference, its allowed margin and a verdict."""
    if delta.empty:
        return f"No configuration in common between {new_label} and {ref_label}."
    headers, rows = compare_cells(delta, new_label, ref_label, words)
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def compare_cells(delta: pd.DataFrame, new_label: str = "new", ref_label: str = "reference",
                  words: dict | None = None) -> tuple[list[str], list[list[str]]]:
    """(headings, rows of formatted cells) of the delta table: the Markdown table and the web page show these."""
    words = {**VERDICT_TEXT, **(words or {})}
    rows = []
    for _, r in delta.sort_values(["dataset", "label", "decoder"]).iterrows():
        if "delta" not in r or pd.isna(r.get("delta")):
            rows.append([r["label"], r["decoder"], _fmt(r.get("cer"), ".4f"), _fmt(r.get("cer_ref"), ".4f"),
                         "", "", r["verdict"]])
            continue
        verdict = words[r["verdict"]] + (f" (outside by {r['beyond']:.4f})" if r["verdict"] != "same" else "")
        ref = f"{r['cer_ref']:.4f}" + (f" ± {r['cer_ci_ref']:.4f}" if pd.notna(r["cer_ci_ref"]) else "")
        rows.append([r["label"], r["decoder"], f"{r['cer']:.4f} (n={int(r['n'])})", f"{ref} (n={int(r['n_ref'])})",
                     f"{r['delta']:+.4f}", f"±{r['margin']:.4f}", verdict])
    return ["Model", "Decoder", f"CER {new_label}", f"CER {ref_label}", "Δ", "allowed", "Verdict"], rows


def results_table(results_dir: str | Path) -> pd.DataFrame:
    """The leaderboard table of a results folder (a clear error when the folder does not exist)."""
    results_dir = Path(results_dir)
    if not (results_dir / RUNS_FILE).is_file():
        raise UserError(f"no {RUNS_FILE} in {results_dir}: not a results folder")
    return leaderboard(load_runs(results_dir))


def compare_folders(new: str | Path, reference: str | Path, tolerance: float = 0.0) -> pd.DataFrame:
    """:func:`compare` of two result folders' leaderboards: what ``report --compare``, ``run``'s reproduction
    table and the ci gate all use."""
    return compare(results_table(new), results_table(reference), tolerance)
