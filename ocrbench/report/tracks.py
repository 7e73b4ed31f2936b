"""The real-handwriting and synthetic tracks side by side, derived from leaderboard tables: variant labels, the
data-efficiency and transfer tables, the cross-collection matrix and the rank agreement between the tracks.

Everything here starts from :func:`long_cer`, one row per (leaderboard row, evaluation set), so the tables, the
learning-curve plot and the matrix read the same numbers. A leaderboard row is one configuration on one device
(its seeds averaged); these views choose among rows, they never average rows together.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .stats import spearman

# The report reads records only, never the dataset registry (tests/test_imports.py), so a dataset's name is the
# marker: the generated datasets are registered as synth-* (synth-lines, synth-pages).
SYNTHETIC_PREFIX = "synth-"
ALL_LINES = "all"  # the budget label of data.train_lines = null (every training line)


def is_synthetic(dataset) -> bool:
    """Generated data: a smoke test and pretraining source, never the headline."""
    return str(dataset).startswith(SYNTHETIC_PREFIX)


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def start_label(init_from) -> str:
    """``scratch``, or where the initial weights came from: ``from quick`` for ``suite:quick``, ``from
    pretrain-s0 (zoo)`` for ``zoo:crnn_small-pretrain-s0`` (zoo names start with the model, which the row names
    already), else the checkpoint's folder and file name."""
    if not isinstance(init_from, str) or not init_from:
        return "scratch"
    kind, sep, name = init_from.partition(":")
    if sep and kind == "suite":
        return f"from {name}"
    if sep and kind == "zoo":
        return f"from {name.partition('-')[2] or name} (zoo)"
    return f"from {'/'.join(Path(init_from).parts[-2:])}"


def budget_label(budget) -> str:
    return str(int(budget)) if _present(budget) else ALL_LINES


def variant_label(row) -> str:
    """``crnn_small · 250 lines · from quick``: the model and, when the record sets them, its training-line
    budget and its start, and the data options or augmentation that set it apart from the other rows of its
    table (``variant``, see :func:`option_variants`); just the model name for records without them."""
    parts = [str(row["model"])]
    if _present(row.get("train_lines_budget")):
        parts.append(f"{int(row['train_lines_budget'])} lines")
    start = start_label(row.get("init_from"))
    variant = row.get("variant")
    label = " · ".join(parts + ([start] if start != "scratch" else []) + ([variant] if _present(variant) and variant
                                                                            else []))
    schedule = row.get("schedule")  # set by with_schedule: " · 3000 steps" or ""
    return label + (schedule if isinstance(schedule, str) else "")


def option_variants(table: pd.DataFrame) -> list[str]:
    """Per row, the generator options and augmentation policy in which the rows of ``table`` differ, as
    ``paper=scan, pen_scale=0.6`` (``data defaults`` for a row that sets none of them); ``""`` everywhere when
    they agree, and for records written before these fields existed."""
    specs = [_option_spec(r) for _, r in table.iterrows()]
    known = [s for s in specs if s is not None]
    keys = sorted({k for s in known for k in s if len({_option_text(t.get(k)) for t in known}) > 1})
    if not keys:
        return [""] * len(specs)
    return ["" if s is None else ", ".join(f"{k}={_option_text(s[k])}" for k in keys if k in s) or "data defaults"
            for s in specs]


def _option_spec(row) -> dict | None:
    options = row.get("data_options")
    if not isinstance(options, dict):
        return None
    augmentation = row.get("augmentation")
    return {**options, **({"augmentation": augmentation} if augmentation not in (None, "mild") else {})}


def _option_text(value) -> str:
    if isinstance(value, list | tuple):
        return f"{len(value)} listed"
    return f"{value:g}" if isinstance(value, float) else str(value)


def has_variants(table: pd.DataFrame) -> bool:
    """Whether any row is a data-efficiency or transfer variant (a line budget or a start other than scratch)."""
    budgets = table["train_lines_budget"].map(_present).any() if "train_lines_budget" in table else False
    starts = (table["init_from"].map(start_label) != "scratch").any() if "init_from" in table else False
    return bool(budgets or starts)


def curve_points(points: pd.DataFrame) -> pd.DataFrame:
    """The points of the learning curves (``points``: :func:`long_cer`): greedy rows with a known number of
    lines, trained with their collection's step budget (a longer schedule is a table row, not a curve point)."""
    return points[(points["decoder"] == "greedy") & points["lines"].notna() & (points["schedule"] == "")]


def has_learning_curve(table: pd.DataFrame) -> bool:
    """Whether a learning curve has two points or more: variants trained on two line budgets or more (a single
    budget, e.g. a longer schedule alone, draws no curve)."""
    if table.empty or not has_variants(table):
        return False
    return curve_points(long_cer(table))["lines"].nunique() > 1


def extra_sets(table: pd.DataFrame) -> list[str]:
    """The evaluation sets joined to a leaderboard table as ``cer@NAME`` columns."""
    return [c[4:] for c in table.columns if c.startswith("cer@")]


def cer_cell(mean, halfwidth, spec: str = ".3f") -> str:
    """``0.123 ± 0.004`` (the half-width left out with one seed), ``–`` without a value."""
    if not _present(mean):
        return "–"
    return format(mean, spec) + (f" ± {format(halfwidth, spec)}" if _present(halfwidth) else "")


# ---------------------------------------------------------------------------------------------- one long frame

KEEP = ["results", "suite", "model", "decoder", "config_id", "device_name", "train_dataset", "train_lines", "n"]


def long_cer(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (leaderboard row, evaluation set): ``dataset``, ``cer``, ``cer_ci``, ``in_domain`` (the training
    collection's own test split), the variant's ``label``, ``start``, ``budget`` and ``schedule`` (see
    :func:`schedule_labels`), and ``lines`` (lines trained on: the record's ``train_lines``, else the budget; NaN
    when neither is known)."""
    if table.empty:
        return pd.DataFrame(columns=KEEP + ["dataset", "cer", "cer_ci", "in_domain", "label", "start", "budget",
                                            "schedule"])
    table = with_schedule(table)
    base = table[[c for c in KEEP + ["schedule"] if c in table]].assign(
        label=[variant_label(r) for _, r in table.iterrows()],
        start=table["init_from"].map(start_label) if "init_from" in table else "scratch",
        budget=table["train_lines_budget"].map(budget_label) if "train_lines_budget" in table else ALL_LINES)
    lines = table["train_lines"] if "train_lines" in table else pd.Series(float("nan"), index=table.index)
    budget = table["train_lines_budget"] if "train_lines_budget" in table else lines
    base["lines"] = pd.to_numeric(lines, errors="coerce").fillna(pd.to_numeric(budget, errors="coerce"))
    frames = [base.assign(dataset=table["dataset"], cer=table["cer"], cer_ci=table["cer_ci"], in_domain=True)]
    frames += [base.assign(dataset=name, cer=table[f"cer@{name}"], cer_ci=table[f"cer_ci@{name}"], in_domain=False)
               for name in extra_sets(table)]
    out = pd.concat(frames, ignore_index=True)
    return out[out["cer"].notna()].reset_index(drop=True)


def with_schedule(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its ``schedule`` column (:func:`schedule_labels`), computed over all of its rows unless it
    has one: a joined table must compare each row with every folder's rows on its collection."""
    return table if "schedule" in table else table.assign(schedule=schedule_labels(table))


def schedule_labels(table: pd.DataFrame) -> pd.Series:
    """`` · 3000 steps`` for a row trained with another recipe than most rows on its real collection (a longer
    schedule is a row of its own, never a point on the same-budget curves), `` · 2000 steps of 8`` when its batch
    size differs too, `` · lr 0.006`` when its peak learning rate does; ``""`` for the usual recipe. Synthetic
    suites each generate their own data and budget: no label."""
    # a truncated run's steps fall short of its budget
    steps = _numeric(table, "steps_budget").fillna(_numeric(table, "steps"))
    collection = table["train_dataset"] if "train_dataset" in table else pd.Series("", index=table.index)
    real = ~collection.map(is_synthetic).astype(bool)
    recipes = pd.Series([tuple(None if pd.isna(v) else float(v) for v in (s, b, lr)) if ok and pd.notna(s) else None
                         for s, b, lr, ok in zip(steps, _numeric(table, "batch_size"), _numeric(table, "lr"), real)],
                        index=table.index)
    usual = {name: r.dropna().mode().iloc[0] for name, r in recipes.groupby(collection) if r.notna().any()}
    return pd.Series([_recipe_difference(r, usual.get(c)) for r, c in zip(recipes, collection)], index=table.index)


def _numeric(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(math.nan, index=table.index)
    return pd.to_numeric(table[column], errors="coerce")


def _recipe_difference(recipe, usual) -> str:
    """What sets ``recipe`` (steps, batch size, peak lr) apart from ``usual``: `` · 2000 steps of 8 · lr 0.006``."""
    if recipe is None or usual is None or recipe == usual:
        return ""
    (steps, batch, lr), same = recipe, [a == b for a, b in zip(recipe, usual)]
    label = ""
    if not (same[0] and same[1]):
        label += f" · {int(steps)} steps" + (f" of {int(batch)}" if not same[1] and batch is not None else "")
    if not same[2] and lr is not None:
        label += f" · lr {lr:g}"
    return label


# ---------------------------------------------------------------------------------------------- data efficiency

def _budget_order(label: str) -> float:
    return math.inf if label == ALL_LINES else float(label)


def efficiency_tables(points: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{evaluation set: greedy CER ± 95% by family and start (rows) and line budget (columns 250 / 1000 / all)},
    the training collection's own test split first."""
    greedy = points[points["decoder"] == "greedy"]
    greedy = greedy.assign(pretrained=greedy["start"] != "scratch").sort_values(["model", "pretrained", "start"])
    out = {}
    for name in pd.concat([greedy[greedy["in_domain"]], greedy])["dataset"].unique():
        rows = greedy[greedy["dataset"] == name]
        cells = pd.DataFrame({"row": _row_keys(rows), "budget": rows["budget"],
                              "cell": [cer_cell(m, c) for m, c in zip(rows["cer"], rows["cer_ci"])]})
        frame = cells.pivot(index="row", columns="budget", values="cell").reindex(cells["row"].unique())
        out[name] = frame[sorted(frame.columns, key=_budget_order)].fillna("–")
    return out


def _row_keys(rows: pd.DataFrame) -> pd.Series:
    """``family · start``; two configurations that would share a cell (another device, recipe or results folder)
    keep rows of their own, named by config, device and folder: rows are chosen, never averaged."""
    keys = rows["model"] + " · " + rows["start"] + (rows["schedule"] if "schedule" in rows else "")
    clash = rows.assign(key=keys).duplicated(["key", "budget"], keep=False)
    where = [f" [{r['config_id']} on {r['device_name']}{', ' + str(r['results']) if 'results' in r else ''}]"
             for _, r in rows.iterrows()]
    return keys + pd.Series(where, index=rows.index).where(clash, "")


EFFICIENCY_NOTE = ("Greedy CER (mean ± 95% over seeds) of each family by the number of lines it was trained on "
                   "(columns: the `data.train_lines` budget; *all* = every training line; the same smaller subsets "
                   "lie inside the larger) and by its start: from scratch, or fine-tuned from another suite's "
                   "checkpoint (`train.init_from`, e.g. *from quick*: the synthetic quick suite). Sets other "
                   "than the training collection's test split are out of domain. `learning_curve.png` draws them.")


def efficiency_markdown(table: pd.DataFrame, level: str = "##") -> list[str]:
    """The data-efficiency and transfer section (no lines when the table has no variants)."""
    if not has_variants(table):
        return []
    parts = [f"{level} Data efficiency and transfer", "", EFFICIENCY_NOTE, ""]
    points = long_cer(table)
    in_domain = set(points.loc[points["in_domain"], "dataset"])
    for name, frame in efficiency_tables(points).items():
        where = "in domain" if name in in_domain else "out of domain"
        parts += [f"**{name}** ({where}):", "",
                  tabulate(frame.reset_index().values, headers=["Family · start", *frame.columns],
                           tablefmt="github", disable_numparse=True), ""]
    return parts


# ---------------------------------------------------------------------------------------------- across tracks

def cross_matrix(points: pd.DataFrame) -> pd.DataFrame:
    """Rows: training collection; columns: test collection; cell: the best greedy CER (a configuration's mean
    over seeds) among every configuration trained on the row's collection, and which one it was."""
    greedy = points[points["decoder"] == "greedy"]
    if greedy.empty:
        return pd.DataFrame()
    best = greedy.loc[greedy.groupby(["train_dataset", "dataset"])["cer"].idxmin()]
    best = best.assign(cell=[f"{c:.3f} ({label})" for c, label in zip(best["cer"], best["label"])])
    matrix = best.pivot(index="train_dataset", columns="dataset", values="cell")
    order = sorted(matrix.columns, key=lambda d: (is_synthetic(d), d))  # real collections first
    return matrix.reindex(sorted(matrix.index, key=lambda d: (is_synthetic(d), d)))[order].fillna("–")


def matrix_markdown(points: pd.DataFrame, level: str = "##") -> list[str]:
    matrix = cross_matrix(points)
    if matrix.empty:
        return []
    return [f"{level} Cross-collection matrix", "",
            "Best greedy CER over all configurations (families, line budgets, starts; each the mean over its "
            "seeds) trained on the row's collection and tested on the column's, with the configuration that "
            "reached it. Cells where the row and column name the same collection are in domain.", "",
            tabulate(matrix.reset_index().values, headers=["trained on \\ tested on", *matrix.columns],
                     tablefmt="github", disable_numparse=True), ""]


def headline_cer(points: pd.DataFrame) -> pd.Series:
    """Greedy CER on each collection's own test split of each family trained on every line, indexed by
    (train_dataset, suite, model): suites train on different data of one collection (the quick and pretrain
    suites' synthetic lines differ), so each is its own ranking, and so is each recipe of one suite (``suite``
    then reads ``real-scratch · 4000 steps of 4``: a suite's rows made before its recipe changed) and each start
    (``real · from pretrain-s0 (zoo)``: the real track fine-tunes pretrained checkpoints); the best row where a
    family has several in one suite (devices)."""
    head = points[(points["decoder"] == "greedy") & points["in_domain"] & (points["budget"] == ALL_LINES)]
    suite = head["suite"].fillna("") if "suite" in head else pd.Series("", index=head.index)
    recipe = head["schedule"].fillna("") if "schedule" in head else ""
    start = head["start"].map(lambda s: "" if s == "scratch" else f" · {s}")
    return head.assign(suite=suite + recipe + start).groupby(["train_dataset", "suite", "model"])["cer"].min()


def rank_agreement(points: pd.DataFrame) -> list[dict]:
    """Spearman rho between the family rankings of each (real collection, suite) and each (synthetic collection,
    suite), over the families present in both (:func:`headline_cer`); pairs with fewer than two in common are
    left out (the synth-ablation suite trains one family)."""
    cer = headline_cer(points)
    tracks = list(dict.fromkeys(cer.index.droplevel("model")))
    out = []
    for real in [t for t in tracks if not is_synthetic(t[0])]:
        for synthetic in [t for t in tracks if is_synthetic(t[0])]:
            common = sorted(set(cer[real].index) & set(cer[synthetic].index))
            if len(common) < 2:
                continue
            rho, low, high = spearman(cer[real][common], cer[synthetic][common])
            out.append({"real": real[0], "real_suite": real[1], "synthetic": synthetic[0],
                        "synthetic_suite": synthetic[1], "n": len(common), "rho": rho, "low": low, "high": high,
                        "families": common})
    return out


def agreement_markdown(points: pd.DataFrame, level: str = "##") -> list[str]:
    rows = rank_agreement(points)
    if not rows:
        return []
    parts = [f"{level} Rank agreement between the tracks", "",
             "Do the synthetic smoke test's rankings predict the real ones? Spearman ρ between the families' "
             "greedy CER on each track's own test split (each family trained on every line; rows fine-tuned from "
             "a pretrained start are a ranking of their own, named by that start).", ""]
    for r in rows:
        parts += [f"- {agreement_text(r)}"]
    return parts + [""]


def agreement_text(r: dict) -> str:
    """``copiste-dun-jour (suite real) vs synth-lines (suite pretrain): ρ = ...``"""
    return f"{_track_name(r['real'], r['real_suite'])} vs {_track_name(r['synthetic'], r['synthetic_suite'])}: " \
        + rho_text(r)


def _track_name(collection: str, suite: str) -> str:
    return f"{collection} (suite {suite})" if suite else collection


def rho_text(r: dict) -> str:
    if not _present(r["rho"]):
        return f"n = {r['n']} families in both: too few (or one side all equal) for a rank correlation"
    ci = (f", approximate 95% interval {r['low']:.2f} to {r['high']:.2f} (Fisher z)" if _present(r["low"])
          else "")
    text = f"ρ = {r['rho']:.2f} over n = {r['n']} families ({', '.join(r['families'])}){ci}."
    if r["n"] < 10:
        text += (f" n = {r['n']} is small: ρ has a wide interval, and a perfect agreement (ρ = 1) happens by "
                 f"chance in 1 of {math.factorial(r['n'])} orderings.")
    return text
