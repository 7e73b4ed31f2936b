"""ocrbench eval: score a trained checkpoint on any line dataset (cross-dataset evaluation included)."""

from __future__ import annotations

import difflib
import sys
from dataclasses import replace

from ..config import LMConfig
from ..data.charset import report_overlap
from ..data.integrity import integrity_summary
from ..data.registry import DataConfig, create_dataset
from ..errors import UserError
from ..evaluate import evaluate
from ..records import environment
from ..runtime import resolve_device
from ..suite import dataset_charset, setup_decoders
from ..train import load_model
from .common import add_json, progress_enabled


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on a dataset split")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `ocrbench train`")
    p.add_argument("--dataset", default="synth-lines", help="dataset name or kind:PATH (default synth-lines)")
    p.add_argument("--split", default="test")
    p.add_argument("--decoder", default="greedy", help="one of the model's decoders: greedy, beam, beam+lm")
    p.add_argument("--lm", metavar="PATH",
                   help="character LM checkpoint for --decoder beam+lm (`ocrbench lm train --out`); default: "
                        "the LM of the default lm settings, trained once (about a minute) and cached")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--test-size", type=int, help="lines in a generated test split (synthetic datasets)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files (counted in the output)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or LM training messages")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    check_sizes(args)
    model = load_recognizer(args.checkpoint)
    check_decoder(model, args.decoder)  # before the LM and the data take minutes to load
    decoding = attach_decoder(model, args)
    cfg = DataConfig(name=args.dataset, height=model.info.input_height, oov="replace", skip_bad=args.skip_bad)
    if args.test_size:
        cfg = replace(cfg, test_size=args.test_size, val_size=args.test_size)
    dataset = create_dataset(args.dataset, args.split, cfg)
    overlap = report_overlap(model.charset, dataset_charset(dataset))
    result = evaluate(model, dataset, decoder=args.decoder, batch_size=args.batch_size, device=args.device,
                      progress=progress_enabled(not args.quiet))
    out = {"model": model.name, "checkpoint": args.checkpoint, "dataset": args.dataset, "split": args.split,
           **result.as_dict(), **decoding, "charset_overlap": overlap, "examples": result.examples,
           **integrity_summary(dataset),
           **environment(resolve_device(args.device))}
    out["text"] = (f"{model.name} on {args.dataset}/{args.split} ({result.lines} lines, {args.decoder}): "
                   f"CER {result.cer:.4f}  WER {result.wer:.4f}")
    if out["bad_files"]:
        out["text"] += f"\n  skipped {out['bad_files']} unreadable files, e.g. {out['bad_examples'][0]}"
    if decoding.get("lm_checkpoint"):
        out["text"] += (f"\n  LM {decoding['lm_checkpoint']} (weight {decoding['lm_weight']}, "
                        f"beam width {decoding['beam_width']})")
    if out["oov_replaced"]:
        shown = ", ".join(f"{c!r}×{n}" for c, n in list(out["oov_replaced"].items())[:10])
        out["text"] += (f"\n  replaced {sum(out['oov_replaced'].values())} characters outside the charset "
                        f"(oov: replace; each counts as an error if the model reads it): {shown}")
    if overlap["only_second"]:
        out["text"] += f"\n  dataset characters the model cannot output: {overlap['only_second']!r}"
    return out


def check_sizes(args) -> None:
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.test_size is not None and args.test_size < 1:
        raise UserError(f"--test-size must be >= 1, got {args.test_size}")


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
        close = difflib.get_close_matches(decoder, model.decoders, n=1, cutoff=0.5)
        hint = f" Did you mean: {close[0]}?" if close else ""
        raise UserError(f"{model.name} has no decoder {decoder!r}.{hint} "
                        f"Its decoders: {', '.join(model.decoders)}")


def attach_decoder(model, args) -> dict:
    """Beam width and, for beam+lm, the character LM (``--lm``, or the default LM, trained once and cached);
    returns the decoder's record fields."""
    if args.lm and args.decoder != "beam+lm":
        raise UserError(f"--lm is used by --decoder beam+lm only, not by {args.decoder!r}")
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))  # stdout may carry --json
    try:
        fields = setup_decoders(model, (args.decoder,), LMConfig(checkpoint=args.lm), args.device, log)
    except ValueError as e:
        if not args.lm:  # the default LM is trained for the model's charset: a ValueError here is a bug
            raise
        raise UserError(f"--lm {args.lm}: {e}") from None  # its charset is not the model's (check_lm_charset)
    return fields.get(args.decoder, {})
