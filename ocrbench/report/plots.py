"""The leaderboard's plots, redrawn from the table with every report (so a plot never contradicts it)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ..records import atomic_write
from .svg import COST_AXES
from .tracks import curve_points, is_synthetic, variant_label


def best_per_model(table: pd.DataFrame) -> pd.DataFrame:
    """One point per model (its best decoder), so labels stay readable."""
    return table.loc[table.groupby("model")["cer"].idxmin()]


def plot_leaderboard(table: pd.DataFrame, path: Path) -> Path:
    """CER (mean, 95% interval as error bars) against GMACs/line, training lines/s and parameters, and, when
    the table has another evaluation set, CER there against the CER on the training collection's test split."""
    return _save(leaderboard_figure(table), path)


def leaderboard_figure(table: pd.DataFrame):
    """The figure of :func:`plot_leaderboard`, laid out, not saved."""
    points = best_per_model(table)
    shared = shared_variant(points)
    extra = [c[4:] for c in table.columns if c.startswith("cer@")]
    panels = [(c, label) for c, label in COST_AXES if c in points and points[c].notna().any()]
    fig, axes = plt.subplots(1, len(panels) + bool(extra), figsize=(4.6 * (len(panels) + bool(extra)), 4.4),
                             squeeze=False)
    for ax, (col, label) in zip(axes[0], panels):
        _scatter(ax, points, col, "cer", xerr=None, yerr="cer_ci", shared=shared)
        ax.margins(y=0.15)  # headroom: the top point's two-line label stays inside its panel, off the title
        values = points[col].dropna()
        if len(values) and values.min() > 0 and values.max() / values.min() > 10:  # log only across decades
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("CER, test split (lower is better)")
    if extra:
        name, ax = extra[0], axes[0][-1]
        _scatter(ax, points, "cer", f"cer@{name}", xerr="cer_ci", yerr=f"cer_ci@{name}", shared=shared)
        # each axis fitted to its own data, so that models a few points apart on the synthetic split (and all
        # far worse on real writing) do not pile up; the equal-CER diagonal only where it is in view
        x_hi = float((points["cer"] + points["cer_ci"].fillna(0)).max()) * 1.4  # room for the labels
        real, real_ci = points[f"cer@{name}"], points[f"cer_ci@{name}"].fillna(0)
        y_lo, y_hi = float((real - real_ci).min()), float((real + real_ci).max())
        pad = max(0.1 * (y_hi - y_lo), 0.01)
        ax.set_xlim(0, x_hi)
        ax.set_ylim(max(0.0, y_lo - pad), y_hi + 2 * pad)  # twice the pad on top: room for the top label
        synthetic = is_synthetic(table.iloc[0]["dataset"])
        if y_lo - pad < x_hi:
            ax.plot([0, y_hi + pad], [0, y_hi + pad], color="0.7", lw=1, ls="--", label="equal CER")
            ax.legend(fontsize=8, loc="lower right")
        else:
            worse_on = "real writing" if synthetic else name
            ax.set_title(f"all worse on {worse_on}: equal CER lies below", fontsize=8, color="0.4")
        ax.set_xlabel("CER, synthetic test split" if synthetic else f"CER, {table.iloc[0]['dataset']} test split")
        ax.set_ylabel(f"CER, {name} ({'real handwriting' if synthetic else 'out of domain'})")
    for ax in axes[0]:
        _labels_inside(ax)  # before the layout, which makes room for labels that stick out
    first = table.iloc[0]
    fig.suptitle(f"ocrbench {first['suite']}: {first['dataset']} {first['split']}, {first['device_name']} "
                 f"{f'· {shared} ' if shared else ''}(mean of n seeds, 95% interval)", fontsize=10)
    fig.tight_layout()
    for ax in axes[0]:
        _labels_inside(ax)  # again in the final layout
        _separate_labels(ax)
    return fig


def _separate_labels(ax, gap: float = 1.0, tries: int = 30) -> None:
    """Move point labels up, lowest first, until none overlaps another (models of similar cost and CER would
    otherwise print their names over each other), then raise the panel's top until the highest label is
    inside it (a stack of labels would otherwise run into the title). Needs the final layout: call after
    tight_layout."""
    fig = ax.figure
    offsets = {id(label): label.xyann for label in ax.texts}
    for _ in range(5):  # a higher top moves the points down, and with them the stack: settle in a few rounds
        fig.canvas.draw()  # text extents exist only once drawn
        for label in ax.texts:
            label.xyann = offsets[id(label)]
        _stack_labels(ax, gap, tries)
        over = max((label.get_window_extent().y1 for label in ax.texts), default=0) - ax.get_window_extent().y1
        if over <= 0:
            return
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + (over + 2 * gap) * (high - low) / ax.get_window_extent().height)


def _stack_labels(ax, gap: float, tries: int) -> None:
    fig = ax.figure
    placed = []
    for label in sorted(ax.texts, key=lambda t: ax.transData.transform(t.xy)[1]):
        for _ in range(tries):
            box = label.get_window_extent()
            hit = next((p for p in placed if box.overlaps(p)), None)
            if hit is None:
                break
            x, y = label.xyann
            label.xyann = (x, y + (hit.y1 - box.y0 + gap) * 72 / fig.dpi)  # display pixels to points
        placed.append(label.get_window_extent())


def _save(fig, path: Path) -> Path:
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
    return path


def _scatter(ax, points: pd.DataFrame, x: str, y: str, xerr: str | None, yerr: str | None,
             shared: str = "") -> None:
    """One point per row, labelled with its model, decoder and (on a line of its own) its variant, unless
    every point has the same variant, ``shared``, which the title then says once."""
    for _, row in points.iterrows():
        if pd.isna(row.get(x)) or pd.isna(row.get(y)):
            continue
        ax.errorbar(row[x], row[y], xerr=_err(row, xerr), yerr=_err(row, yerr), fmt="o", ms=5, capsize=3)
        model, _, variant = variant_label(row).partition(" · ")
        variant = "" if variant == shared else variant
        ax.annotate(f"{model} ({row['decoder']})" + (f"\n{variant}" if variant else ""), (row[x], row[y]),
                    fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.grid(alpha=0.3)


def shared_variant(points: pd.DataFrame) -> str:
    """The variant (start, line budget, schedule) that every point has, or "" when they differ."""
    variants = {variant_label(row).partition(" · ")[2] for _, row in points.iterrows()}
    return variants.pop() if len(variants) == 1 else ""


def _labels_inside(ax) -> None:
    """Point labels in the right 55% of a panel, and any that would run past its right edge (into the next
    panel, or off the figure) where there is more room on the left, go to the left of their point."""
    ax.get_xlim(), ax.get_ylim()  # autoscaling is lazy: settle the limits before using the transforms
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    for label in ax.texts:
        width = label.get_window_extent(renderer).width
        x = ax.transData.transform(label.xy)[0]
        overflows = x + width > frame.x1 and x - frame.x0 > frame.x1 - x
        if (x - frame.x0) > 0.45 * frame.width or overflows:
            label.set_horizontalalignment("right")
            label.xyann = (-4, 4)


def _err(row: pd.Series, col: str | None):
    return None if col is None or pd.isna(row.get(col)) else row[col]


def plot_learning_curves(points: pd.DataFrame, path: Path) -> Path:
    """Greedy CER (mean, 95% interval over seeds) against the lines trained on (log axis), one line per family
    and start (solid: from scratch, dashed: fine-tuned), one panel per evaluation set, the training collection's
    own test split first. ``points``: :func:`ocrbench.report.tracks.long_cer`."""
    greedy = curve_points(points)
    sets = list(pd.concat([greedy[greedy["in_domain"]], greedy])["dataset"].unique()) or ["no greedy rows"]
    colours = {m: f"C{i % 10}" for i, m in enumerate(sorted(greedy["model"].unique()))}
    styles = _start_styles(greedy["start"].unique())
    fig, axes = plt.subplots(1, len(sets), figsize=(5.4 * len(sets) + 2.4, 4.6), squeeze=False, sharey=True,
                             layout="constrained")  # room for the legend outside the panels
    for ax, name in zip(axes[0], sets):
        rows = greedy[greedy["dataset"] == name]
        _curves(ax, rows, colours, styles)
        where = "in domain" if rows["in_domain"].any() else "out of domain"
        ax.set_title(f"{name} ({where})", fontsize=9)
        ax.set_xlabel("training lines (log scale)")
    axes[0][0].set_ylabel("CER, greedy (lower is better)")
    handles = ([Line2D([], [], color=c, marker="o", label=m) for m, c in colours.items()]
               + [Line2D([], [], color="0.3", ls=ls, label=start) for start, (ls, _) in styles.items()])
    if handles:
        fig.legend(handles=handles, fontsize=7, loc="outside right center")
    fig.suptitle("Data efficiency and transfer (mean of n seeds, 95% interval)", fontsize=10)
    return _save(fig, path)


def _start_styles(starts) -> dict[str, tuple[str, float]]:
    """{start: (line style, x offset factor)}: scratch solid, each pretrained start dashed (then dotted ...); the
    small offsets keep the error bars of one family's starts apart at the same number of lines."""
    pretrained = sorted(s for s in starts if s != "scratch")
    styles = {"scratch": ("-", 0.97)} if "scratch" in set(starts) else {}
    return {**styles, **{s: (("--", ":", "-.")[i % 3], 1.03 + 0.02 * i) for i, s in enumerate(pretrained)}}


def _curves(ax, rows: pd.DataFrame, colours: dict, styles: dict) -> None:
    """One line per family and start (and per device, when the rows come from several). A curve may join points of
    several results folders (the real suite's every-line runs and real-efficiency's subsets share one recipe);
    each point stays its own configuration's mean."""
    keys = ["model", "start"] + [c for c in ("device_name",) if c in rows and rows[c].nunique() > 1]
    for key, line in rows.groupby(keys, sort=True):
        line = line.sort_values("lines")
        ls, shift = styles[key[1]]
        ax.errorbar(line["lines"] * shift, line["cer"], yerr=line["cer_ci"].fillna(0), color=colours[key[0]],
                    ls=ls, marker="o", ms=4, capsize=3)
    if not rows.empty:
        ax.set_xscale("log")
        ax.set_xticks(sorted(rows["lines"].unique()))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(alpha=0.3)


def plot_variants(table: pd.DataFrame, path: Path) -> Path:
    """One bar per row (its variant label) for each evaluation set other than the training data's test split,
    with the 95% interval over test documents: an ablation's rows side by side on the collections that matter."""
    sets = [c[4:] for c in table.columns if c.startswith("cer@")]
    rows = table.sort_values(f"cer@{sets[0]}" if sets else "cer", ascending=False)
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(rows) * max(1, len(sets)) + 1.6))
    height = 0.8 / max(1, len(sets))
    for k, name in enumerate(sets):
        y = [i + k * height for i in range(len(rows))]
        low, high = _doc_bounds(rows, name)
        err = [rows[f"cer@{name}"] - low, high - rows[f"cer@{name}"]]
        ax.barh(y, rows[f"cer@{name}"], height=height, xerr=err, capsize=2, label=name)
    ax.set_yticks([i + height * (len(sets) - 1) / 2 for i in range(len(rows))])
    one_model = rows["model"].nunique() == 1  # then the variant alone names the bar
    ax.set_yticklabels([f"{r['variant'] if one_model else variant_label(r)} ({r['decoder']})"
                        for _, r in rows.iterrows()], fontsize=8)
    ax.set_xlabel("CER (lower is better; bars: 95% interval over test documents)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    first = table.iloc[0]
    model = f"{first['model']}, " if one_model else ""
    fig.suptitle(f"ocrbench {first['suite']}: {model}each variant on the other collections "
                 f"(n = {int(table['n'].max())} seed(s))", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _doc_bounds(rows: pd.DataFrame, name: str) -> tuple[pd.Series, pd.Series]:
    """The document-bootstrap interval of each row on set ``name``; the point itself where there is none."""
    cer = rows[f"cer@{name}"]
    low, high = rows.get(f"cer_doc_lo@{name}"), rows.get(f"cer_doc_hi@{name}")
    if low is None or high is None:
        return cer, cer
    return low.fillna(cer), high.fillna(cer)
