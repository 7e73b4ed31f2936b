"""The leaderboard as a static web site: ``index.html``, its script and style sheet, the PNG plots, and one page per
leaderboard row with its records (configuration, environment stamp, training curve). No server and no network:
open ``index.html`` from the disk.

The page shows the cells the Markdown leaderboard shows (:func:`~ocrbench.report.leaderboard.table_cells`,
:func:`~ocrbench.report.leaderboard.compare_cells`, the tracks' tables), computed once from the same reports; the
script only sorts, filters and links hover between a plot's point and its row. Charts are inline SVG
(:mod:`ocrbench.report.svg`), the script and style sheet are ours (``assets/``): nothing is fetched.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from html import escape
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ..config import REFERENCE_RESULTS
from ..errors import UserError
from ..records import RUNS_FILE, atomic_write_text
from . import svg
from .detection import detector_cells, detector_leaderboard
from .leaderboard import (
    COMBINED_INTRO,
    EXTRA_JOIN,
    GROUP,
    INTRO,
    SECTION,
    SYNTHETIC_NOTE,
    FolderReport,
    compare_cells,
    compare_folders,
    failures,
    missing_lines,
    recipe_line,
    recognition_rows,
    section_notes,
    synthetic_rows,
    table_cells,
    truncated_runs,
)
from .tracks import (
    EFFICIENCY_NOTE,
    agreement_text,
    cross_matrix,
    efficiency_tables,
    extra_sets,
    has_variants,
    long_cer,
    rank_agreement,
    variant_label,
    with_schedule,
)

SITE_DIR = "leaderboard"  # the site's folder beside leaderboard.md, unless --html names another
ASSETS = ("leaderboard.css", "leaderboard.js")
FILTERS = (("family", "Family"), ("decoder", "Decoder"), ("device", "Device"))
# size suffixes of the registered variants: crnn_small and crnn_base are one family, crnn
SIZE_SUFFIX = re.compile(r"_(tiny|small|base|medium|large)$")
# raw values to sort by, for columns whose cells are not plain numbers ("=1", "0.800 ± 0.030 (docs ...)")
SORT_KEYS = {"Rank": "rank", "CER": "cer", "± 95%": "cer_ci", "CER 95% (docs)": "cer_doc_lo"}
ENVIRONMENT = ("device", "device_name", "world_size", "threads", "num_workers", "torch", "python", "git", "time",
               "run_id")
CURVES = ("train_curve", "val_curve")
REPRODUCTION_NOTE = ("`reproduced`: the mean CER lies within the 95% interval of the difference of means (the "
                     "reference's seed spread; one run on each side must agree to 4 decimals). A partial run is "
                     "not a failed reproduction: rows only in the reference are left out.")


class Comparison(NamedTuple):
    """A delta table (:func:`~ocrbench.report.leaderboard.compare`) to show: a reproduction or the ci gate."""

    title: str
    note: str  # what the verdicts mean (Markdown inline)
    delta: pd.DataFrame
    new_label: str = "new"
    ref_label: str = "reference"
    words: dict | None = None


def family(model: str) -> str:
    """``crnn_small`` → ``crnn``: the registered variants of one architecture share a family."""
    return SIZE_SUFFIX.sub("", str(model))


def site_dir(path: str | Path) -> Path:
    """The site's folder, checked: a file there is the user's mistake, said in one line."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"--html {path}: a file is in the way; the web page is a folder (index.html and its "
                        "assets): name a folder")
    return path


def reproductions(reports: list[FolderReport]) -> list[Comparison]:
    """Each folder against its suite's committed reference (``results/<suite>``), as ``ocrbench run`` shows it;
    none for a folder that is its own reference or a suite without one."""
    out = []
    for report in reports:
        suites = report.table["suite"].dropna().unique() if "suite" in report.table else []
        for suite in suites:
            reference = Path(REFERENCE_RESULTS) / str(suite)
            if not (reference / RUNS_FILE).is_file() or reference.resolve() == report.folder.resolve():
                continue
            delta = compare_folders(report.folder, reference)
            if not delta.empty:
                delta = delta[delta["verdict"] != "only in reference"]
                out.append(Comparison(f"Reproduction: {report.folder} against the reference {reference}",
                                      REPRODUCTION_NOTE, delta, "local", "reference"))
    return out


def write_site(reports: list[FolderReport], out: str | Path, plots: dict | None = None,
               comparisons: list[Comparison] = (), problems: list[str] = (), title: str = "ocrbench leaderboard") -> dict:
    """Write the site for ``reports`` (one or several results folders) into ``out``.

    Args:
        plots: {name: path} as the Markdown report returned them; its PNG files are copied beside index.html.
        comparisons: delta tables (a reproduction, the ci gate), shown after the leaderboards.
        problems: the ci gate's reasons to fail, shown first.
    Returns:
        {"html": path of index.html, "records": the folder of the per-row record pages}.
    """
    out = site_dir(out)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    records = out / "records"
    if records.exists():  # pages of rows gone from the table must not linger
        shutil.rmtree(records)
    records.mkdir()
    for name in ASSETS:
        atomic_write_text(out / "assets" / name, resources.files(__package__).joinpath("assets", name).read_text())
    images = {}
    for key, path in (plots or {}).items():
        if path and str(path).endswith(".png") and Path(path).is_file():
            if Path(path).resolve() != (out / Path(path).name).resolve():  # the site may share the report's folder
                shutil.copyfile(path, out / Path(path).name)
            images[key] = Path(path).name
    page = _Page(out)
    body = page.body(reports, images, list(comparisons), list(problems))
    atomic_write_text(out / "index.html", _document(title, body, page.filters()))
    return {"html": str(out / "index.html"), "records": str(records)}


# ---------------------------------------------------------------------------------------------- the page

class _Page:
    """Builds index.html's body and writes a record page per leaderboard row, collecting the filter values."""

    def __init__(self, out: Path):
        self.out = out
        self.values: dict[str, set] = {key: set() for key, _ in FILTERS}
        self.rows = 0
        self.comparisons = 0

    def body(self, reports: list[FolderReport], images: dict, comparisons: list[Comparison],
             problems: list[str]) -> str:
        combined = len(reports) > 1
        parts = [f"<p>{_inline(INTRO)}</p>"] + ([f"<p>{_inline(COMBINED_INTRO)}</p>"] if combined else [])
        if problems:
            parts.append("<div class='problems'><strong>ci gate FAILED</strong><ul>"
                         + "".join(f"<li>{escape(p)}</li>" for p in problems) + "</ul></div>")
        tables = [r.table.assign(results=str(r.folder)) for r in reports]
        real = [t[~synthetic_rows(t)] for t in tables]
        parts += self._track("Real handwriting", reports, real, "real")
        real_all = pd.concat(real, ignore_index=True)
        if has_variants(real_all):
            parts += self._efficiency(real_all)
        if combined:
            parts += self._across(pd.concat(tables, ignore_index=True))
        parts += self._track("Synthetic track (a smoke test)", reports, [t[synthetic_rows(t)] for t in tables],
                             "synthetic", SYNTHETIC_NOTE if combined else "")
        parts += [self._comparison(c) for c in comparisons]
        parts += self._plots(images) + self._appendix(reports)
        return _nav(parts) + "\n".join(parts)

    def filters(self) -> str:
        boxes = []
        for key, label in FILTERS:
            options = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in sorted(self.values[key]))
            boxes.append(f'<label>{label} <select data-filter="{key}"><option value="">all</option>{options}'
                         "</select></label>")
        boxes.append('<label>Search <input type="search" id="search" placeholder="model, dataset…"></label>')
        return ("<form id='filters' class='filters' onsubmit='return false'>" + "".join(boxes)
                + f" <span id='shown'>{self.rows} rows</span></form>")

    # ---- the leaderboards

    def _track(self, heading: str, reports, tables, anchor: str, note: str = "") -> list[str]:
        sections = [s for report, table in zip(reports, tables) if not table.empty
                    for s in self._sections(report, table)]
        if not sections:
            return []
        return [f"<h2 id='{anchor}'>{escape(heading)}</h2>"] + ([f"<p>{_inline(note)}</p>"] if note else []) + sections

    def _sections(self, report: FolderReport, table: pd.DataFrame) -> list[str]:
        parts, table = [], with_schedule(table)  # a folder's own sections label the recipes its rows differ in
        for keys, group in table.groupby(SECTION, sort=False):
            suite, dataset, split, version, device = keys
            ids = [self._row_id() for _ in range(len(group))]
            parts += [f"<section class='board'><h3>{escape(dataset)} ({escape(split)} split)"
                      f"{', suite ' + escape(suite) if suite else ''}</h3>",
                      f"<p class='recipe'>Results <code>{escape(str(report.folder))}</code>. Device: "
                      f"{escape(device or 'unknown')}; data version {escape(version or 'n/a')}; "
                      f"{escape(recipe_line(group))}.</p>",
                      self._board(report, group, ids), _lines(missing_lines(report.missing)),
                      self._scatter(group, ids),
                      "<details class='notes'><summary>What the columns mean</summary>"
                      + _lines(section_notes(group, report.runs)) + "</details></section>"]
        return parts

    def _row_id(self) -> str:
        self.rows += 1
        return f"row{self.rows}"

    def _board(self, report: FolderReport, group: pd.DataFrame, ids: list[str]) -> str:
        cells = table_cells(group, report.missing)
        head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in cells) + "<th class='nosort'>Record</th>"
        body = []
        for i, (row_id, (_, row)) in enumerate(zip(ids, group.iterrows())):
            attrs = {"family": family(row["model"]), "decoder": str(row["decoder"]),
                     "device": str(row["device_name"] or "unknown")}
            for key, value in attrs.items():
                self.values[key].add(value)
            tds = "".join(_td(cells[h][i], _sort_value(row, h)) for h in cells)
            link = self._record_page(report, row, row_id)
            data = "".join(f' data-{k}="{escape(v)}"' for k, v in attrs.items())
            body.append(f"<tr id='{row_id}'{data}>{tds}<td><a href='{link}'>record</a></td></tr>")
        return (f"<div class='scroll'><table class='sortable leaderboard'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table></div>")

    def _scatter(self, group: pd.DataFrame, ids: list[str]) -> str:
        """CER against each cost (the PNG's panels), every row a point; hover names the row and lights it up."""
        colours = {m: i for i, m in enumerate(sorted({family(m) for m in group["model"]}))}
        charts = []
        for col, label in svg.COST_AXES:
            if col not in group or not group[col].notna().any():
                continue
            points = [svg.Point(float(r[col]), float(r["cer"]), _point_title(r, label, r[col]),
                                _num(r.get("cer_ci")), row_id, colours[family(r["model"])])
                      for row_id, (_, r) in zip(ids, group.iterrows()) if pd.notna(r[col])]
            charts.append(svg.scatter(points, label, "CER (lower is better)"))
        for name in extra_sets(group)[:1]:  # as the PNG: the other evaluation set's CER against this one's
            points = [svg.Point(float(r["cer"]), float(r[f"cer@{name}"]), _point_title(r, f"CER {name}", r[f"cer@{name}"]),
                                _num(r.get(f"cer_ci@{name}")), row_id, colours[family(r["model"])])
                      for row_id, (_, r) in zip(ids, group.iterrows()) if pd.notna(r[f"cer@{name}"])]
            charts.append(svg.scatter(points, f"CER, {group.iloc[0]['dataset']}", f"CER, {name}"))
        charts = [c for c in charts if c]
        if not charts:
            return ""
        legend = "".join(f"<span class='key c{i % 10}'>{escape(m)}</span>" for m, i in colours.items())
        return (f"<div class='charts'>{''.join(charts)}</div><div class='legend'>Family: {legend} (hover a point: "
                "its row lights up)</div>")

    # ---- the record page of one row

    def _record_page(self, report: FolderReport, row: pd.Series, row_id: str) -> str:
        key = "|".join([str(report.folder)] + [str(row[c]) for c in GROUP])
        name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', str(row['model']))}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.html"
        seeds, elsewhere = _row_records(report.runs, row)
        title = f"{variant_label(row)} ({row['decoder']})"
        parts = [f"<p><a href='../index.html#{row_id}'>← leaderboard</a></p>",
                 f"<p>{escape(str(row['dataset']))} {escape(str(row['split']))} split, suite "
                 f"{escape(str(row['suite']))}, results <code>{escape(str(report.folder))}</code>: CER "
                 f"{row['cer']:.4f}{_ci_text(row.get('cer_ci'))} over n = {int(row['n'])} seed(s), rank "
                 f"{int(row['rank'])}{' (tied)' if row.get('tied') else ''}.</p>"]
        parts += ["<h2>Training curve</h2>", _curves(seeds)]
        parts += ["<h2>Configuration</h2>", _field_table(seeds, lambda k: k not in ENVIRONMENT)]
        parts += ["<h2>Environment stamp</h2>", _field_table(seeds, lambda k: k in ENVIRONMENT)]
        if elsewhere:
            parts += ["<h2>Other evaluation sets</h2>", _plain_table(
                ["Dataset", "Split", "Seed", "CER", "WER"],
                [[r.get("dataset"), r.get("split"), r.get("seed"), _num_text(r.get("cer")), _num_text(r.get("wer"))]
                 for r in elsewhere])]
        examples = seeds[-1].get("examples") if seeds else None
        if isinstance(examples, list) and examples:
            parts += ["<h2>Examples (last seed)</h2>", _plain_table(
                ["Reference", "Hypothesis"], [[e.get("ref", ""), e.get("hyp", "")] for e in examples])]
        raw = "\n".join(json.dumps(r, default=_jsonable, ensure_ascii=False) for r in seeds + elsewhere)
        parts += ["<h2>Records</h2>", f"<details><summary>runs.jsonl lines ({len(seeds) + len(elsewhere)})"
                  f"</summary><pre>{escape(raw)}</pre></details>"]
        atomic_write_text(self.out / "records" / name, _document(title, "\n".join(parts), "", prefix="../"))
        return f"records/{name}"

    # ---- the other tables

    def _comparison(self, c: Comparison) -> str:
        self.comparisons += 1
        head = f"<h2 id='comparison{self.comparisons}'>{escape(c.title)}</h2>"
        if c.delta.empty:
            return (f"{head}<p>No configuration in common between {escape(c.new_label)} and "
                    f"{escape(c.ref_label)}.</p>")
        headers, rows = compare_cells(c.delta, c.new_label, c.ref_label, c.words)
        return f"{head}<p>{_inline(c.note)}</p>" + _plain_table(headers, rows)

    def _efficiency(self, table: pd.DataFrame) -> list[str]:
        points = long_cer(table)
        in_domain = set(points.loc[points["in_domain"], "dataset"])
        parts = ["<h3 id='efficiency'>Data efficiency and transfer</h3>", f"<p>{_inline(EFFICIENCY_NOTE)}</p>"]
        for name, frame in efficiency_tables(points).items():
            where = "in domain" if name in in_domain else "out of domain"
            parts += [f"<p><strong>{escape(name)}</strong> ({where}):</p>",
                      _plain_table(["Family · start", *frame.columns], frame.reset_index().values.tolist())]
        return parts

    def _across(self, table: pd.DataFrame) -> list[str]:
        points = long_cer(table)
        parts = []
        matrix = cross_matrix(points)
        if not matrix.empty:
            parts += ["<h3 id='matrix'>Cross-collection matrix</h3>",
                      "<p>Best greedy CER over all configurations trained on the row's collection and tested on "
                      "the column's, with the configuration that reached it.</p>",
                      _plain_table(["trained on \\ tested on", *matrix.columns], matrix.reset_index().values.tolist())]
        agreement = rank_agreement(points)
        if agreement:
            parts += ["<h3 id='agreement'>Rank agreement between the tracks</h3><ul>"]
            parts += [f"<li>{escape(agreement_text(r))}</li>" for r in agreement] + ["</ul>"]
        return parts

    def _plots(self, images: dict) -> list[str]:
        if not images:
            return []
        return (["<h2 id='plots'>Plots</h2>"]
                + [f"<figure><img src='{escape(name)}' alt='{escape(key)}'><figcaption>{escape(name)} (the static "
                   "plot of the Markdown report)</figcaption></figure>" for key, name in images.items()])

    def _appendix(self, reports: list[FolderReport]) -> list[str]:
        runs = pd.concat([r.runs.assign(results=str(r.folder)) for r in reports], ignore_index=True)
        parts = []
        for report in reports:
            detectors = detector_leaderboard(report.runs)
            for (dataset, split), group in (detectors.groupby(["dataset", "split"], sort=False)
                                            if not detectors.empty else ()):
                parts += [f"<h3>Text-line detectors: {escape(dataset)} ({escape(split)} split)</h3>",
                          _plain_table(*detector_cells(group))]
        for heading, frame in (("Truncated runs (not ranked)", truncated_runs(runs)), ("Failed runs", failures(runs))):
            if not frame.empty:
                parts += [f"<h2>{heading}</h2>", _plain_table(list(frame.columns), frame.values.tolist())]
        return (["<h2 id='appendix'>Detectors and runs apart</h2>"] + parts) if parts else []


# ---------------------------------------------------------------------------------------------- pieces

def _document(title: str, body: str, filters: str, prefix: str = "") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{prefix}assets/leaderboard.css">
</head>
<body>
<header><h1>{escape(title)}</h1>{filters}</header>
<main>
{body}
</main>
<footer>Generated by <code>ocrbench report --html</code> from the run records; do not edit by hand.</footer>
<script src="{prefix}assets/leaderboard.js"></script>
</body>
</html>
"""


def _nav(parts: list[str]) -> str:
    """Links to the page's h2 sections (those with an id)."""
    found = re.findall(r"<h2 id='([^']+)'>(.*?)</h2>", "".join(parts))
    links = " · ".join(f"<a href='#{anchor}'>{title}</a>" for anchor, title in found)
    return f"<nav>{links}</nav>\n" if links else ""


def _inline(text: str) -> str:
    """The Markdown our notes use, inline: `code`, **bold**, *emphasis* (everything else escaped)."""
    text = escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<em>\1</em>", text)


def _lines(lines: list[str]) -> str:
    """Markdown lines (paragraphs and ``- `` items) as HTML."""
    out, items = [], []
    for line in [*lines, ""]:
        if line.startswith("- "):
            items.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if items:
            out.append(f"<ul>{''.join(items)}</ul>")
            items = []
        if line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    return "".join(out)


def _td(text, sort_value=None) -> str:
    key = f' data-sort="{float(sort_value)!r}"' if _present(sort_value) else ""
    return f"<td{key}>{escape(str(text))}</td>"


def _sort_value(row: pd.Series, heading: str):
    """The raw number a leaderboard cell sorts by, where its text is not one (``None``: the text sorts)."""
    if heading in SORT_KEYS:
        return row.get(SORT_KEYS[heading])
    return row.get("cer@" + heading[4:]) if heading.startswith("CER ") else None


def _plain_table(headers: list, rows: list[list]) -> str:
    head = "".join(f"<th scope='col'>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td("" if v is None else v) for v in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table class='sortable'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _present(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _num(v) -> float:
    return float(v) if _present(v) else 0.0


def _num_text(v) -> str:
    return f"{float(v):.4f}" if _present(v) else ""


def _ci_text(ci) -> str:
    return f" ± {float(ci):.4f}" if _present(ci) else ""


def _point_title(row: pd.Series, label: str, x) -> str:
    return (f"{variant_label(row)} ({row['decoder']}): CER {row['cer']:.4f}{_ci_text(row.get('cer_ci'))}, "
            f"{label} {float(x):.4g}")


def _jsonable(value):
    return value.item() if hasattr(value, "item") else str(value)


def _clean(record: dict) -> dict:
    """A record as it was written: the keys other records brought to the frame (NaN here) dropped."""
    return {k: v for k, v in record.items() if not (isinstance(v, float) and math.isnan(v))}


def _row_records(runs: pd.DataFrame, row: pd.Series) -> tuple[list[dict], list[dict]]:
    """The records behind a leaderboard row (the last per seed, as the row averaged them) and the same
    configuration's records on other evaluation sets."""
    ok = recognition_rows(runs)
    same = (ok[GROUP] == pd.Series({c: str(row[c]) for c in GROUP})).all(axis=1)
    main = ok[same & (ok["dataset"] == ok["train_dataset"]) & ~ok["truncated"]]
    if "seed" in main:
        main = main.drop_duplicates("seed", keep="last").sort_values("seed")
    joined = (ok[EXTRA_JOIN] == pd.Series({c: str(row[c]) for c in EXTRA_JOIN})).all(axis=1)
    other = ok[joined & (ok["dataset"] != ok["train_dataset"])]
    return [_clean(r) for r in main.to_dict("records")], [_clean(r) for r in other.to_dict("records")]


def _field_table(records: list[dict], wanted) -> str:
    """The scalar fields of the seeds' records (columns: seeds), those ``wanted(key)`` picks."""
    keys = sorted({k for r in records for k, v in r.items() if wanted(k) and not isinstance(v, (dict, list))})
    if not keys:
        return "<p>None recorded.</p>"
    headers = ["Field"] + [f"seed {r.get('seed', i)}" for i, r in enumerate(records)]
    return _plain_table(headers, [[k] + [_value_text(r.get(k, "")) for r in records] for k in keys])


def _value_text(v) -> str:
    """A record's value as written: whole floats (ints made floats by the frame) without ``.0``."""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.6g}"
    return str(v)


def _curves(records: list[dict]) -> str:
    """Training loss and validation CER against the step, one line per seed (``train_curve`` rows are
    [step, loss, lr]; ``val_curve`` rows [step, seconds, CER])."""
    loss = {f"seed {r.get('seed')}": [(c[0], c[1]) for c in r.get("train_curve") or []] for r in records}
    cer = {f"seed {r.get('seed')}": [(c[0], c[2]) for c in r.get("val_curve") or []] for r in records}
    charts = [svg.lines(loss, "step", "training loss"), svg.lines(cer, "step", "validation CER", point_titles=True)]
    charts = [f"<div>{c}</div>" for c in charts if c]
    return f"<div class='charts'>{''.join(charts)}</div>" if charts else "<p>No curve in the records.</p>"
