"""ocrbench page IMAGE: detect the text lines of a page, read them top to bottom, print the text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("page", help="transcribe a page image: detect lines, order, crop, recognize")
    p.add_argument("image", help="page image (any size; grayscale, RGB, ...)")
    p.add_argument("--detector", required=True,
                   help="detector checkpoint.pt (or its run folder), or a detector name such as yolo_lines: "
                        "the newest checkpoint of that model under --runs")
    p.add_argument("--recognizer", required=True,
                   help="recognizer checkpoint.pt (or its run folder), or a recognizer name such as crnn")
    p.add_argument("--runs", default="runs", help="where to look for checkpoints given by name (default runs/)")
    p.add_argument("--ink", choices=["auto", "dark", "bright"], default="auto",
                   help="dark: a scan (dark ink on light paper); bright: ocrbench's convention; auto: guess")
    p.add_argument("--score-threshold", type=float, help="detection score threshold (default: the detector's)")
    p.add_argument("--reference", help="ALTO or PAGE XML of this page: also report page CER and detection AP")
    p.add_argument("--draw", metavar="PNG", help="write the page with the detected boxes to this PNG")
    p.add_argument("--device", default="auto")
    add_json(p)
    p.set_defaults(handler=handle)


def find_checkpoint(spec: str, runs: str | Path, task: str) -> Path:
    """A checkpoint file, a run folder holding checkpoint.pt, or the newest ``<runs>/**/<name>-*/checkpoint.pt``
    of a registered model name."""
    from ..models import list_models

    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir() and (path / "checkpoint.pt").is_file():
        return path / "checkpoint.pt"
    if spec in list_models():
        found = sorted(Path(runs).glob(f"**/{spec}-*/checkpoint.pt"), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
        raise UserError(f"no trained {spec} checkpoint under {runs}/: train one first "
                        f"(ocrbench train --model {spec} ...) or pass a checkpoint path")
    kind = "detector" if task == "detection" else "recognizer"
    raise UserError(f"{kind} {spec!r} is neither a checkpoint file, a run folder, nor a registered model "
                    f"({', '.join(list_models(task=task))})")


def load_for_task(spec: str, runs: str | Path, task: str):
    from ..harness.checkpoint import load_model

    path = find_checkpoint(spec, runs, task)
    model = load_model(path)
    if model.task != task:
        raise UserError(f"{path} holds {model.name}, a {model.task} model; a {task} model is needed here")
    return model, path


def handle(args) -> dict:
    from ..pipeline import (
        draw_boxes,
        evaluate_pages,
        load_image,
        page_sample_from_xml,
        to_ink_bright,
        transcribe_page,
    )

    detector, det_path = load_for_task(args.detector, args.runs, "detection")
    recognizer, rec_path = load_for_task(args.recognizer, args.runs, "recognition")
    gray = load_image(args.image)
    result = transcribe_page(gray, detector, recognizer, ink=args.ink, score_threshold=args.score_threshold,
                             device=args.device)
    result.source = str(args.image)
    out = {**result.as_dict(), "detector": str(det_path), "recognizer": str(rec_path)}
    text = [result.text or "(no text lines found)"]
    if args.reference:
        sample = page_sample_from_xml(args.reference)
        scores = evaluate_pages([sample], detector, recognizer, args.score_threshold, args.device)
        out["reference"] = {k: scores[k] for k in ("page_cer", "page_wer", "ap50", "ap", "precision", "recall", "f1",
                                                   "gt_lines")}
        text.append(f"\n-- vs. {args.reference}: page CER {scores['page_cer']:.4f}  AP@0.5 {scores['ap50']:.3f}  "
                    f"AP@[.5:.95] {scores['ap']:.3f}  F1@0.5 {scores['f1']:.3f} ({scores['gt_lines']} lines)")
    if args.draw:
        page = to_ink_bright(gray, args.ink)
        to_page = np.array([page.shape[1] / result.width, page.shape[0] / result.height] * 2, dtype=np.float32)
        draw_boxes(page, result.boxes * to_page).save(args.draw)  # boxes are in file pixels, page maybe smaller
        out["drawing"] = args.draw
        text.append(f"wrote {args.draw}")
    # --json: "text" is the page's transcription; otherwise what is printed (transcription, then scores)
    out["text"] = result.text if args.json else "\n".join(text)
    return out
