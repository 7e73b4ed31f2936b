"""ocrbench eval: score a trained checkpoint on any line dataset (cross-dataset evaluation included)."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..bench.suite import dataset_charset, suite_lm
from ..config import LMConfig
from ..data.charset import report_overlap
from ..data.integrity import integrity_summary
from ..datasets import create_dataset
from ..decoding import Decoding, unknown_decoder, uses_lm
from ..errors import UserError
from ..harness.checkpoint import load_model
from ..harness.evaluate import decoding_fields, evaluate, make_decodings
from ..records import environment
from ..runtime import resolve_device
from .common import (
    add_checkpoint_eval_options,
    add_json,
    checkpoint_eval_settings,
    progress_enabled,
    resolve_zoo_checkpoint,
    run_config,
)


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on a dataset split")
    add_checkpoint_eval_options(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    resolve_zoo_checkpoint(args)
    model = load_recognizer(args.checkpoint)
    cfg, settings, source = checkpoint_eval_settings(args, model.info.input_height)
    check_decoder(model, args.decoder)  # before the LM and the data take minutes to load
    decoding = make_decoding(model, args, settings["device"])
    dataset = create_dataset(cfg.name, args.split, cfg)
    overlap = report_overlap(model.charset, dataset_charset(dataset))
    result = evaluate(model, dataset, decoding, batch_size=settings["batch_size"],
                      device=settings["device"], progress=progress_enabled(not args.quiet))
    fields = decoding_fields(decoding)
    out = {"model": model.name, "checkpoint": args.checkpoint, "dataset": cfg.name, "split": args.split,
           "data_config": source,
           **result.as_dict(), **fields, "charset_overlap": overlap, "examples": result.examples,
           **integrity_summary(dataset),
           **environment(resolve_device(settings["device"]))}
    out["text"] = (f"{model.name} on {cfg.name}/{args.split} ({result.lines} lines, {args.decoder}): "
                   f"CER {result.cer:.4f}  WER {result.wer:.4f}")
    if out["bad_files"]:
        out["text"] += (f"\n  skipped {out['bad_files']} unreadable files or lines over the size bounds, e.g. "
                        f"{out['bad_examples'][0]}")
    if fields.get("lm_checkpoint"):
        out["text"] += (f"\n  LM {fields['lm_checkpoint']} (weight {fields['lm_weight']}, "
                        f"beam width {fields['beam_width']})")
    if out["oov_replaced"]:
        shown = ", ".join(f"{c!r}×{n}" for c, n in list(out["oov_replaced"].items())[:10])
        out["text"] += (f"\n  replaced {sum(out['oov_replaced'].values())} characters outside the charset "
                        f"(oov: replace; each counts as an error if the model reads it): {shown}")
    if overlap["only_second"]:
        out["text"] += f"\n  dataset characters the model cannot output: {overlap['only_second']!r}"
    return out


def run_lm(args) -> LMConfig:
    """The LM settings of the run that wrote the checkpoint (its config.yaml, or ``--config``): its beam width,
    fusion weights and LM (``corpus: train-split``: the one of its training transcriptions), so that a +lm
    decoder gives the CER the run recorded; code defaults without a run config. ``--lm`` replaces the LM
    only. The training split is read only for a +lm decoder."""
    cfg, _ = run_config(args)
    lm = LMConfig() if cfg is None else suite_lm(cfg)[0] if uses_lm(args.decoder) else cfg.lm
    return replace(lm, checkpoint=args.lm) if args.lm else lm


def load_recognizer(path: str):
    """The line recognizer of an ocrbench checkpoint; a clear error for a foreign ``.pt`` (a bare
    state_dict, a list) or a detector's checkpoint."""
    model = load_model(path)
    if model.task != "recognition":
        raise UserError(f"{path} holds {model.name}, a {model.task} model; `ocrbench eval` scores line "
                        "recognizers (`ocrbench train`/`run` score a detector on a page dataset)")
    return model


def check_decoder(model, decoder: str) -> None:
    """An unknown decoder name fails fast, with the model's decoders."""
    if decoder not in model.decoders:
        raise UserError(unknown_decoder(model.name, decoder, model.decoders))


def make_decoding(model, args, device: str) -> Decoding:
    """How ``--decoder`` decodes: the beam width and, for a +lm decoder, the character LM and its fusion
    (:func:`run_lm`; the LM trained once and cached, on ``device``: the evaluation's, resolved from the options
    and the run's config)."""
    if args.lm and not uses_lm(args.decoder):
        raise UserError(f"--lm is used by the +lm decoders only (beam+lm, ctc+lm, joint+lm), not by "
                        f"{args.decoder!r}")
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))  # stdout may carry --json
    try:
        return make_decodings(model, (args.decoder,), run_lm(args), device, log)[args.decoder]
    except ValueError as e:
        if not args.lm:  # the default LM is trained for the model's charset: a ValueError here is a bug
            raise
        raise UserError(f"--lm {args.lm}: {e}") from None  # its charset is not the model's (check_lm_charset)
