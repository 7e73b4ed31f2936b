"""The deployment table and plot, derived from the rows (never edited by hand).

:func:`write_results` writes ``deploy.jsonl`` (the record), ``deploy.csv`` (the same rows, flat), ``deploy.md``
(export and parity, int8, latency by line length) and ``latency.png`` (latency against line length, one panel
per model, log axes) into a results folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..records import atomic_write, atomic_write_text

BACKENDS = ("eager", "compiled", "onnxruntime", "eager-int8", "onnxruntime-int8")
FP32_OF = {"eager-int8": "eager", "onnxruntime-int8": "onnxruntime"}  # each int8 backend's fp32 reference
SPEEDUP_CHARS = 32  # the line length of the int8 speed-up column


def _fmt(value, spec: str = ".4f") -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _status(row: dict) -> str:
    return row["status"] if row["status"] == "ok" else f"{row['status']}: {row.get('reason') or row.get('error')}"


def _table(headers: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in body])


def latency_of(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    """(model, backend, chars) -> the latency row that was measured."""
    return {(r["model"], r["backend"], r["chars"]): r for r in rows
            if r.get("measure") == "latency" and r.get("status") == "ok"}


def export_table(rows: list[dict]) -> str:
    body = []
    for r in (r for r in rows if r.get("measure") == "export"):
        mb = r.get("onnx_bytes") and r["onnx_bytes"] / 2**20
        equal = {True: "yes", False: "**no**"}.get(r.get("cer_equal_4dp"), "")
        body.append([r["model"], r.get("kind", ""), _fmt(mb, ".2f"), _fmt(r.get("max_abs_error"), ".1e"),
                     _fmt(r.get("max_rel_error"), ".1e"), _fmt(r.get("cer_torch")), _fmt(r.get("cer_onnx")), equal,
                     _status(r)[:120]])
    return _table(["model", "graphs", "ONNX MiB", "max abs error", "max rel error", "CER PyTorch",
                   "CER onnxruntime", "equal to 4 dp", "status"], body)


def int8_table(rows: list[dict]) -> str:
    latency = latency_of(rows)
    body = []
    for r in (r for r in rows if r.get("measure") == "int8"):
        fast, slow = latency.get((r["model"], r["backend"], SPEEDUP_CHARS)), latency.get(
            (r["model"], FP32_OF[r["backend"]], SPEEDUP_CHARS))
        fp32_ms, int8_ms = (x and x["latency_ms_median"] for x in (slow, fast))
        speedup = fp32_ms / int8_ms if fp32_ms and int8_ms else None
        change = r.get("cer_change")
        body.append([r["model"], r["backend"], _fmt(r.get("cer_fp32")), _fmt(r.get("cer_int8")),
                     _fmt(change, "+.4f"), _fmt(fp32_ms, ".2f"), _fmt(int8_ms, ".2f"),
                     _fmt(speedup, ".2f") + ("x" if speedup else ""), _status(r)[:100]])
    return _table(["model", "backend", "CER fp32", "CER int8", "CER change", f"fp32 ms @ {SPEEDUP_CHARS} chars",
                   f"int8 ms @ {SPEEDUP_CHARS} chars", "speed-up", "status"], body)


def latency_table(rows: list[dict]) -> str:
    timed = [r for r in rows if r.get("measure") == "latency" and "chars" in r]
    chars = sorted({r["chars"] for r in timed})
    body = []
    for model in dict.fromkeys(r["model"] for r in timed):
        for backend in BACKENDS:
            cells = {r["chars"]: r for r in timed if r["model"] == model and r["backend"] == backend}
            if not cells:
                continue
            ok = [c for c in cells.values() if c["status"] == "ok"]
            failed = next((c for c in cells.values() if c["status"] != "ok"), None)
            body.append([model, backend] + [_latency_cell(cells.get(n)) for n in chars]
                        + [_fmt(ok[0].get("compile_s") if ok else None, ".1f"),
                           _status(failed)[:80] if failed else "ok"])
    na = [f"{r['model']}: {r['reason']}" for r in rows if r.get("measure") == "latency" and r["status"] == "n/a"]
    return _table(["model", "backend"] + [f"{n} chars" for n in chars] + ["compile s", "status"], body) + (
        "\n\n" + "; ".join(na) if na else "")


def _latency_cell(row: dict | None) -> str:
    if row is None or row["status"] != "ok":
        return ""
    return f"{row['latency_ms_median']:.2f} ({row['latency_ms_iqr']:.2f})"


def caption(rows: list[dict]) -> str:
    """Where and how the rows were measured (every row carries its own stamp; this sums them up)."""
    loads = [r["loadavg_1m"] for r in rows if r.get("loadavg_1m") is not None]
    values = lambda key: ", ".join(sorted({str(r[key]) for r in rows if r.get(key) is not None}))  # noqa: E731
    return (f"Measured in one run on {values('device_name')} ({values('device')}), torch threads: "
            f"{values('threads')}, onnxruntime threads: {values('ort_threads')}, 1-minute load average "
            f"{min(loads, default=0):.2f}–{max(loads, default=0):.2f}; torch {values('torch')}, onnxruntime "
            f"{values('onnxruntime')}, git {values('git')}. Latency: one line (batch 1), greedy decoding "
            "(autoregressive models decode every character of the line), median over timed calls and (IQR) in ms; "
            "onnxruntime and int8 rows run on the CPU. The CPU is shared with other work while measuring, so "
            "absolute times are noisy: compare ratios between backends and models of this one run.")


def markdown(rows: list[dict]) -> str:
    lines = sorted({r["lines"] for r in rows if r.get("lines")})
    split = f"the test split ({' / '.join(map(str, lines))} lines)" if lines else "the test split"
    return "\n\n".join([
        "# Deployment measurements", caption(rows),
        "## ONNX export and parity\n\nonnxruntime (CPU) against PyTorch: the largest absolute difference of the "
        "outputs on the first test lines (max rel error = that over the largest absolute PyTorch value), and the "
        f"greedy CER of both on {split}.", export_table(rows),
        "## int8 dynamic quantisation (CPU)\n\nPyTorch: `quantize_dynamic` of Linear/LSTM/LSTMCell; onnxruntime: "
        "its dynamic quantisation (int8 weights). Speed-up: fp32 over int8 median latency of one line, same "
        "backend family.", int8_table(rows),
        "## Latency at batch 1 by line length (ms: median (IQR))", latency_table(rows),
        "![latency against line length](latency.png)"]) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Latency against line length, one panel per recognizer, one line per backend (IQR shaded), log axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [r for r in rows if r.get("measure") == "latency" and r.get("status") == "ok"]
    models = list(dict.fromkeys(r["model"] for r in timed))
    if not models:
        return
    cols = min(3, len(models))
    fig, axes = plt.subplots(-(-len(models) // cols), cols, figsize=(4.2 * cols, 3.4 * -(-len(models) // cols)),
                             squeeze=False, sharey=True)
    for ax, model in zip(axes.flat, models):
        for backend in BACKENDS:
            points = sorted((r["chars"], r) for r in timed if r["model"] == model and r["backend"] == backend)
            if not points:
                continue
            x = [c for c, _ in points]
            ax.plot(x, [r["latency_ms_median"] for _, r in points], marker="o", ms=3, label=backend)
            ax.fill_between(x, [r["latency_ms_q1"] for _, r in points], [r["latency_ms_q3"] for _, r in points],
                            alpha=0.2)
        ax.set(xscale="log", yscale="log", title=model, xlabel="line length (characters)")
        ax.set_xticks(x, [str(c) for c in x])
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.flat[len(models):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("latency of one line (ms)")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Batch-1 latency by line length (median, IQR shaded)", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def write_results(rows: list[dict], folder: str | Path) -> dict[str, Path]:
    """The rows and what is derived from them, in ``folder``; returns the paths written."""
    import pandas as pd

    folder = Path(folder)
    paths = {name: folder / name for name in ("deploy.jsonl", "deploy.csv", "deploy.md", "latency.png")}
    atomic_write_text(paths["deploy.jsonl"], "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows))
    flat = pd.DataFrame([{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()}
                         for r in rows])
    atomic_write_text(paths["deploy.csv"], flat.to_csv(index=False))
    atomic_write_text(paths["deploy.md"], markdown(rows))
    plot(rows, paths["latency.png"])
    return paths
