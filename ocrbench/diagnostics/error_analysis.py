"""Error analysis of a recognizer (the troubleshooting method's "look at the errors").

Every line's reference and hypothesis are NFC-normalised with collapsed whitespace, as for scoring
(:func:`ocrbench.data.charset.nfc`), then aligned by the edit operations of rapidfuzz's Levenshtein distance
(a minimal script: its length is the line's edit count, the same number ``editdistance`` gives the CER).
From the alignments come the character confusions (substitutions ref -> hyp, insertions, deletions), the
corpus CER by reference length and by writer (or font), the worst lines, and two *secondary* CER variants
(case-insensitive, without punctuation) that show how much of the error is case or punctuation. Every rate
is corpus level: edits over reference characters (:mod:`ocrbench.harness.metrics`), never a mean of line rates.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from ..data.charset import nfc
from ..decoding import Decoding
from ..harness.metrics import ErrorCounts

LENGTH_EDGES = (10, 20, 30, 40, 60, 80)  # upper ends of the reference-length buckets; the last bucket is open
GROUP_KEY = "writer"  # line metadata that names the writer (IAM) or font (synth-lines); ALTO lines have none
TOP = 20  # rows of each confusion table
WORST = 12  # lines on the contact sheet
OP_NAMES = {"replace": "sub", "insert": "ins", "delete": "del"}


@dataclass
class LineErrors:
    """One scored line: the normalised texts and the edit script that turns ``ref`` into ``hyp``."""

    index: int  # position in the dataset
    ref: str
    hyp: str
    ops: list[tuple[str, int, int]]  # ("sub" | "ins" | "del", position in ref, position in hyp)
    meta: dict = field(default_factory=dict)

    @property
    def edits(self) -> int:
        return len(self.ops)

    @property
    def chars(self) -> int:
        return len(self.ref)

    @property
    def cer(self) -> float:
        return ErrorCounts(char_edits=self.edits, chars=self.chars).cer


def align(ref: str, hyp: str) -> list[tuple[str, int, int]]:
    """The minimal edit script from ``ref`` to ``hyp``: ``(op, ref_pos, hyp_pos)`` with op sub/ins/del."""
    return [(OP_NAMES[op.tag], op.src_pos, op.dest_pos) for op in Levenshtein.editops(ref, hyp)]


def score_lines(refs: Sequence[str], hyps: Sequence[str], metas: Sequence[dict] | None = None) -> list[LineErrors]:
    """Normalise and align every (reference, hypothesis) pair."""
    metas = metas if metas is not None else [{}] * len(refs)
    lines = []
    for i, (ref, hyp, meta) in enumerate(zip(refs, hyps, metas, strict=True)):
        ref, hyp = nfc(ref), nfc(hyp)
        lines.append(LineErrors(i, ref, hyp, align(ref, hyp), dict(meta)))
    return lines


@dataclass
class Confusions:
    substitutions: Counter = field(default_factory=Counter)  # (ref char, hyp char) -> count
    insertions: Counter = field(default_factory=Counter)  # hyp char that has no ref char -> count
    deletions: Counter = field(default_factory=Counter)  # ref char missing from hyp -> count

    def add(self, line: LineErrors) -> Confusions:
        for op, i, j in line.ops:
            if op == "sub":
                self.substitutions[(line.ref[i], line.hyp[j])] += 1
            elif op == "ins":
                self.insertions[line.hyp[j]] += 1
            else:
                self.deletions[line.ref[i]] += 1
        return self

    def top(self, n: int = TOP) -> dict:
        """The ``n`` most frequent of each kind (ties in first-seen order), with the totals."""
        return {"substitutions": [{"ref": r, "hyp": h, "count": c} for (r, h), c in self.substitutions.most_common(n)],
                "insertions": [{"hyp": h, "count": c} for h, c in self.insertions.most_common(n)],
                "deletions": [{"ref": r, "count": c} for r, c in self.deletions.most_common(n)],
                "totals": {"substitutions": sum(self.substitutions.values()),
                           "insertions": sum(self.insertions.values()), "deletions": sum(self.deletions.values())}}


def confusions(lines: Iterable[LineErrors]) -> Confusions:
    out = Confusions()
    for line in lines:
        out.add(line)
    return out


def _row(label: str, lines: Sequence[LineErrors]) -> dict:
    edits, chars = sum(x.edits for x in lines), sum(x.chars for x in lines)
    return {"group": label, "lines": len(lines), "chars": chars, "edits": edits,
            "cer": ErrorCounts(char_edits=edits, chars=chars).cer}


def length_bucket(n: int, edges: Sequence[int] = LENGTH_EDGES) -> str:
    """The label of the reference-length bucket of ``n`` characters: ``"11-20"``, or ``"81+"`` past the last."""
    low = 0
    for high in edges:
        if n <= high:
            return f"{low + 1 if low else 0}-{high}"
        low = high
    return f"{low + 1}+"


def cer_by_length(lines: Sequence[LineErrors], edges: Sequence[int] = LENGTH_EDGES) -> list[dict]:
    """Corpus CER per reference-length bucket (only buckets that hold lines), shortest first."""
    labels = [length_bucket(n, edges) for n in (*edges, edges[-1] + 1)]
    buckets = {label: [] for label in labels}
    for line in lines:
        buckets[length_bucket(line.chars, edges)].append(line)
    return [_row(label, group) for label, group in buckets.items() if group]


def cer_by_group(lines: Sequence[LineErrors], key: str = GROUP_KEY) -> list[dict] | None:
    """Corpus CER per value of ``meta[key]`` (worst first); None when no line has that key. Lines without it
    (a mixed dataset) form the group ``"(none)"``."""
    if not any(key in line.meta for line in lines):
        return None
    groups: dict[str, list[LineErrors]] = {}
    for line in lines:
        groups.setdefault(str(line.meta.get(key, "(none)")), []).append(line)
    return sorted((_row(g, members) for g, members in groups.items()), key=lambda r: (-r["cer"], r["group"]))


def _without_punctuation(text: str) -> str:
    return " ".join("".join(c for c in text if not unicodedata.category(c).startswith("P")).split())


def secondary_cers(lines: Sequence[LineErrors]) -> dict:
    """Secondary variants of the corpus CER, for diagnosis only (the benchmark's CER is case and punctuation
    sensitive): ignoring case (``str.casefold`` of both sides), and with Unicode punctuation (category P*)
    removed from both sides, whitespace collapsed again."""
    refs, hyps = [x.ref for x in lines], [x.hyp for x in lines]
    folded = ErrorCounts().update([h.casefold() for h in hyps], [r.casefold() for r in refs])
    bare = ErrorCounts().update([_without_punctuation(h) for h in hyps], [_without_punctuation(r) for r in refs])
    return {"case_insensitive": folded.cer, "no_punctuation": bare.cer,
            "no_punctuation_reference_chars": bare.chars}


def worst_lines(lines: Sequence[LineErrors], k: int = WORST) -> list[LineErrors]:
    """The ``k`` lines with the most edits, ties broken by the higher CER, then by dataset order."""
    return sorted((x for x in lines if x.edits), key=lambda x: (-x.edits, -x.cer, x.index))[:k]


def analyse(lines: Sequence[LineErrors], k: int = WORST, top: int = TOP, group_key: str = GROUP_KEY) -> dict:
    """Everything errors.json holds, from scored lines."""
    totals = _row("all", lines)
    by_group = cer_by_group(lines, group_key)
    return {"cer": totals["cer"], "lines": totals["lines"], "chars": totals["chars"], "edits": totals["edits"],
            "confusions": confusions(lines).top(top),
            "cer_by_length": cer_by_length(lines),
            "cer_by_group": {"key": group_key, "groups": by_group,
                             "note": None if by_group is not None else _no_group_note(lines, group_key)},
            "secondary": secondary_cers(lines),
            "worst_lines": [_line_dict(x) for x in worst_lines(lines, k)]}


def _no_group_note(lines: Sequence[LineErrors], key: str) -> str:
    keys = sorted({k for line in lines for k in line.meta})
    return f"n/a: the lines carry no {key!r} metadata (their keys: {', '.join(keys) or 'none'})"


def _line_dict(line: LineErrors) -> dict:
    return {"index": line.index, "ref": line.ref, "hyp": line.hyp, "edits": line.edits, "chars": line.chars,
            "cer": line.cer, "ops": [list(op) for op in line.ops],
            "meta": {k: v for k, v in line.meta.items() if isinstance(v, (str, int, float, bool))}}


# ---- report text ---------------------------------------------------------------------------------------------
def _show(c: str) -> str:
    """A character as a table cell: spaces and backticks visible, Markdown's pipe escaped."""
    return {" ": "␣", "|": "\\|", "`": "'`'"}.get(c, c)


def _table(header: Sequence[str], rows: Iterable[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def _cer_rows(rows: Sequence[dict]) -> list[tuple]:
    return [(r["group"], r["lines"], r["chars"], r["edits"], f"{r['cer']:.4f}") for r in rows]


def errors_markdown(report: dict, title: str = "Error analysis") -> str:
    """errors.md: the tables of :func:`analyse`'s report (derived from errors.json, never edited)."""
    c, sec = report["confusions"], report["secondary"]
    out = [f"# {title}", "",
           f"Corpus CER **{report['cer']:.4f}** ({report['edits']} edits / {report['chars']} reference characters, "
           f"{report['lines']} lines; NFC, whitespace collapsed, case and punctuation kept).", "",
           f"Edits: {c['totals']['substitutions']} substitutions, {c['totals']['insertions']} insertions, "
           f"{c['totals']['deletions']} deletions (a space is shown as ␣).", "",
           "## Top substitutions (reference → hypothesis)", ""]
    out += _table(["ref", "hyp", "count"], ((_show(s["ref"]), _show(s["hyp"]), s["count"]) for s in c["substitutions"]))
    out += ["", "## Top insertions (in the hypothesis only)", ""]
    out += _table(["hyp", "count"], ((_show(s["hyp"]), s["count"]) for s in c["insertions"]))
    out += ["", "## Top deletions (missing from the hypothesis)", ""]
    out += _table(["ref", "count"], ((_show(s["ref"]), s["count"]) for s in c["deletions"]))
    out += ["", "## CER by reference length (characters)", ""]
    out += _table(["length", "lines", "chars", "edits", "CER"], _cer_rows(report["cer_by_length"]))
    group = report["cer_by_group"]
    out += ["", f"## CER by {group['key']}", ""]
    out += (_table([group["key"], "lines", "chars", "edits", "CER"], _cer_rows(group["groups"]))
            if group["groups"] is not None else [group["note"]])
    out += ["", "## Secondary CER variants (diagnosis only, not the benchmark's CER)", "",
            f"- case-insensitive: {sec['case_insensitive']:.4f}",
            f"- without punctuation: {sec['no_punctuation']:.4f} ({sec['no_punctuation_reference_chars']} "
            "reference characters left)", "", "## Worst lines (most edits, ties by CER)", ""]
    out += _table(["line", "edits", "CER", "reference", "hypothesis"],
                  ((x["index"], x["edits"], f"{x['cer']:.3f}", _code(x["ref"]), _code(x["hyp"]))
                   for x in report["worst_lines"]))
    return "\n".join(out) + "\n"


def _code(text: str) -> str:
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`" if text else "(empty)"


def errors_summary(report: dict) -> str:
    """The few lines the CLI prints."""
    c, sec = report["confusions"], report["secondary"]
    subs = ", ".join(f"{_show(s['ref'])}→{_show(s['hyp'])} {s['count']}" for s in c["substitutions"][:5]) or "none"
    lines = [f"CER {report['cer']:.4f} ({report['edits']} edits / {report['chars']} chars, {report['lines']} lines): "
             f"{c['totals']['substitutions']} sub, {c['totals']['insertions']} ins, {c['totals']['deletions']} del",
             f"  top substitutions: {subs}",
             "  by length: " + ", ".join(f"{r['group']} {r['cer']:.3f}" for r in report["cer_by_length"])]
    groups = report["cer_by_group"]["groups"]
    lines.append(f"  by {report['cer_by_group']['key']}: "
                 + (", ".join(f"{r['group']} {r['cer']:.3f}" for r in groups[:6]) + (" ..." if len(groups) > 6 else "")
                    if groups is not None else "n/a"))
    lines.append(f"  secondary (diagnosis only): case-insensitive {sec['case_insensitive']:.4f}, "
                 f"without punctuation {sec['no_punctuation']:.4f}")
    return "\n".join(lines)


# ---- the contact sheet -----------------------------------------------------------------------------------------
# Colours of the marked differences (background of the character cell), readable on white.
COLOURS = {"sub": (255, 190, 90), "ins": (120, 170, 255), "del": (255, 120, 120), "gap": (235, 235, 235)}
SHEET_LINE_HEIGHT = 48  # pixels of each line image on the sheet
SHEET_MAX_WIDTH = 1400  # wider line images are scaled down
FONT_SIZE = 16


def aligned_columns(line: LineErrors) -> list[tuple[str, str, str]]:
    """The alignment as columns ``(ref char, hyp char, op)``, op "" for a match; a gap is ``""``."""
    cols, i, j = [], 0, 0
    for op, ri, hj in line.ops:
        while i < ri and j < hj:  # matches before this edit
            cols.append((line.ref[i], line.hyp[j], ""))
            i, j = i + 1, j + 1
        if op == "sub":
            cols.append((line.ref[ri], line.hyp[hj], "sub"))
            i, j = ri + 1, hj + 1
        elif op == "del":
            cols.append((line.ref[ri], "", "del"))
            i, j = ri + 1, hj
        else:
            cols.append(("", line.hyp[hj], "ins"))
            i, j = ri, hj + 1
    cols += [(line.ref[a], line.hyp[b], "") for a, b in zip(range(i, len(line.ref)), range(j, len(line.hyp)))]
    return cols


def _mono_font(size: int):
    from PIL import ImageFont

    try:  # matplotlib (a default dependency) ships DejaVu Sans Mono: fixed-width cells line the texts up
        from matplotlib import font_manager

        path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans Mono"), fallback_to_default=False)
        return ImageFont.truetype(path, size)
    except Exception:  # no matplotlib font: Pillow's default (proportional, so columns are approximate)
        return ImageFont.load_default(size=size)


def _line_image(image: np.ndarray):
    """Dark ink on white paper (the datasets store ink bright), at the sheet's line height."""
    from PIL import Image

    im = Image.fromarray(255 - np.asarray(image, dtype=np.uint8))
    w = max(1, round(im.width * SHEET_LINE_HEIGHT / im.height))
    h = SHEET_LINE_HEIGHT
    if w > SHEET_MAX_WIDTH:
        w, h = SHEET_MAX_WIDTH, max(1, round(SHEET_LINE_HEIGHT * SHEET_MAX_WIDTH / w))
    return im.resize((w, h), Image.BILINEAR)


def _draw_texts(draw, x: int, y: int, cols, font, cell: float, row_h: int) -> None:
    """Two rows (ref over hyp) of aligned character cells, edited cells coloured."""
    for row, (label, pick, mark) in enumerate((("ref", 0, ("sub", "del")), ("hyp", 1, ("sub", "ins")))):
        top = y + row * row_h
        draw.text((x, top), label, fill=(110, 110, 110), font=font)
        for k, col in enumerate(cols):
            left = x + (4 + k) * cell
            ch, op = col[pick], col[2]
            if op:
                colour = COLOURS[op] if op in mark else COLOURS["gap"]
                draw.rectangle((left, top, left + cell - 1, top + row_h - 3), fill=colour)
            if ch:
                draw.text((left, top), "␣" if (ch == " " and op) else ch, fill=(0, 0, 0), font=font)


def draw_contact_sheet(lines: Sequence[LineErrors], images: Sequence[np.ndarray], path: str | Path,
                       title: str = "") -> Path:
    """A PNG of ``lines`` (already the worst, in order): caption, line image, then the reference over the
    hypothesis, aligned, with substituted (orange), inserted (blue) and deleted (red) characters marked."""
    from PIL import Image, ImageDraw

    font, small = _mono_font(FONT_SIZE), _mono_font(FONT_SIZE - 3)
    title = title or "worst lines"
    cell, row_h, pad = font.getlength("M"), FONT_SIZE + 8, 12
    pictures = [_line_image(im) for im in images]
    cols = [aligned_columns(x) for x in lines]
    text_w = max([int((4 + len(c)) * cell) for c in cols] + [_legend_width(small), int(font.getlength(title))])
    width = 2 * pad + max([p.width for p in pictures] + [text_w])
    entry_h = [row_h + p.height + 6 + 2 * row_h + pad for p in pictures]
    height = 2 * pad + 2 * row_h + sum(entry_h)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    _legend(draw, pad, pad, title, font, small, row_h)
    y = pad + 2 * row_h
    for rank, (line, picture, col, h) in enumerate(zip(lines, pictures, cols, entry_h), 1):
        who = f" · {GROUP_KEY} {line.meta[GROUP_KEY]}" if GROUP_KEY in line.meta else ""
        draw.text((pad, y), f"#{rank}  line {line.index}{who} · {line.edits} edits / {line.chars} chars · "
                            f"CER {line.cer:.3f}", fill=(60, 60, 60), font=small)
        sheet.paste(picture, (pad, y + row_h))
        _draw_texts(draw, pad, y + row_h + picture.height + 6, col, font, cell, row_h)
        draw.line((pad, y + h - pad // 2, width - pad, y + h - pad // 2), fill=(200, 200, 200))
        y += h
    path = Path(path)
    sheet.save(path)
    return path


LEGEND = (("sub", "substituted"), ("ins", "inserted (hypothesis only)"), ("del", "deleted (missing from hypothesis)"),
          ("gap", "gap facing an insertion or deletion"))


def _legend_width(small) -> int:
    return sum(30 + int(small.getlength(label)) for _, label in LEGEND)


def _legend(draw, x: int, y: int, title: str, font, small, row_h: int) -> None:
    draw.text((x, y), title, fill=(0, 0, 0), font=font)
    y += row_h
    for op, label in LEGEND:
        draw.rectangle((x, y + 2, x + 14, y + 16), fill=COLOURS[op])
        draw.text((x + 20, y), label, fill=(60, 60, 60), font=small)
        x += 30 + int(small.getlength(label))


# ---- a model on a dataset ---------------------------------------------------------------------------------------
def transcribe(model, dataset, decoding: Decoding | str = "greedy", batch_size: int = 32, device: str = "auto",
               progress: bool = False) -> tuple[list[str], list[str], dict]:
    """(references, hypotheses, evaluate's summary) of every line, in dataset order, through
    :func:`ocrbench.harness.evaluate.evaluate` (its examples are kept for every line)."""
    from ..harness.evaluate import evaluate

    result = evaluate(model, dataset, decoding, batch_size=batch_size, device=device,
                      num_examples=len(dataset), progress=progress)
    return [e["ref"] for e in result.examples], [e["hyp"] for e in result.examples], result.as_dict()


def error_analysis(model, dataset, out_dir: str | Path, decoding: Decoding | str = "greedy", batch_size: int = 32,
                   device: str = "auto", k: int = WORST, name: str = "", progress: bool = False) -> dict:
    """Evaluate ``model`` on ``dataset`` and write errors.json, errors.md and worst_lines.png to ``out_dir``;
    returns the report (with the evaluation's summary under ``"evaluation"`` and the file paths). ``name``
    says what was evaluated, in the titles (e.g. "crnn_small on synth-lines/test (greedy)")."""
    import json

    from ..records import atomic_write_text

    refs, hyps, summary = transcribe(model, dataset, decoding, batch_size, device, progress)
    lines = score_lines(refs, hyps, [dataset[i].meta for i in range(len(dataset))])
    report = {**analyse(lines, k), "evaluation": summary}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    worst = worst_lines(lines, k)
    name = name or model.name
    title = f"{name}: {len(worst)} worst lines (most edits, ties by CER)"
    files = {"json": out / "errors.json", "markdown": out / "errors.md", "contact_sheet": out / "worst_lines.png"}
    if worst:
        draw_contact_sheet(worst, [dataset[x.index].image for x in worst], files["contact_sheet"], title)
    else:  # a perfect transcription: no sheet, and no stale one from an earlier run
        files["contact_sheet"].unlink(missing_ok=True)
        files["contact_sheet"] = None
    report["files"] = {k: str(v) if v else None for k, v in files.items()}
    atomic_write_text(files["json"], json.dumps(report, indent=1, ensure_ascii=False))
    atomic_write_text(files["markdown"], errors_markdown(report, title=f"Error analysis: {name}"))
    return report
