"""ocrbench lm train|eval: the character language model used by the beam+lm decoders."""

from __future__ import annotations

import time

from ..bench.suite import suite_lm
from ..data.charset import IAM_CHARS
from ..lm import default_lm_path, evaluate_lm, get_lm, held_out_texts, load_lm, train_and_save
from ..lm.text import CORPORA, TRAIN_CORPUS
from ..lm.train import HELD_OUT
from .common import add_json, add_overrides, suite_from_args


def register(sub) -> None:
    p = sub.add_parser("lm", help="train or evaluate the character language model (decoder beam+lm)")
    lm_sub = p.add_subparsers(dest="lm_command", required=True, metavar="{train,eval}")

    t = lm_sub.add_parser("train", help=f"train the character LM on the vendored text {TRAIN_CORPUS}")
    t.add_argument("--config", help="suite YAML whose lm section to use (default: code defaults); with corpus "
                                    "train-split, the LM of its data's training transcriptions, as its runs use")
    t.add_argument("--out", help="checkpoint path (default: the cache, <cache>/lm/charlm-<hash>.pt, where "
                                 "the suite looks for it)")
    t.add_argument("--steps", type=int)
    t.add_argument("--device", default="auto")
    t.add_argument("--force", action="store_true", help="retrain even if the checkpoint exists")
    t.add_argument("--eval-lines", type=int, help="score only the first N held-out lines (default: all)")
    t.add_argument("--quiet", action="store_true")
    add_overrides(t)
    add_json(t)
    t.set_defaults(handler=handle_train)

    e = lm_sub.add_parser("eval", help="perplexity / bits per character on held-out text")
    e.add_argument("--checkpoint", help="LM checkpoint (default: the cached LM of the config's lm settings)")
    e.add_argument("--config", help="suite YAML whose lm section names the LM (default: code defaults)")
    e.add_argument("--text", action="append",
                   help=f"vendored corpus ({', '.join(CORPORA)}) or a text file, one sentence a line; "
                        f"repeatable (default: the config's held-out text, else {', '.join(HELD_OUT)})")
    e.add_argument("--max-lines", type=int, help="score only the first N wrapped lines of each text")
    e.add_argument("--device", default="cpu")
    add_overrides(e)
    add_json(e)
    e.set_defaults(handler=handle_eval)


def handle_train(args) -> dict:
    suite = suite_from_args(args.config, args.overrides, {"lm.steps": args.steps, "lm.eval_lines": args.eval_lines})
    cfg, chars = suite_lm(suite)  # corpus train-split: the suite's training transcriptions, in its charset
    chars = chars or IAM_CHARS
    path = args.out or default_lm_path(cfg, chars)
    log = None if args.quiet or args.json else print
    t0 = time.perf_counter()
    if args.force or args.out:
        lm = train_and_save(cfg, chars, path, device=args.device, log=log, held_out=held_out_texts(cfg))
    else:
        lm = get_lm(cfg, chars, device=args.device, log=log)
    info = {**lm.info, "checkpoint": str(path), "seconds": round(time.perf_counter() - t0, 2)}
    lines = [f"character LM: {path}", f"  {info['params']:,} parameters, {info['train_steps']} steps in "
             f"{info['train_seconds']:.0f}s on {info['device']}, training {info['train_bpc']:.3f} bits/char"]
    lines += [f"  {c:<16} {s['bpc']:.3f} bits/char  perplexity {s['perplexity']:.2f}  ({s['lines']} lines)"
              for c, s in info.get("eval", {}).items()]
    return {**info, "text": "\n".join(lines)}


def handle_eval(args) -> dict:
    suite = suite_from_args(args.config, args.overrides)
    cfg, chars = (suite.lm, None) if args.checkpoint or suite.lm.checkpoint else suite_lm(suite)
    path = args.checkpoint or cfg.checkpoint or default_lm_path(cfg, chars or IAM_CHARS)
    lm = load_lm(path)
    scores = [evaluate_lm(lm, text, cfg.max_chars, args.max_lines, device=args.device).as_dict()
              for text in args.text or held_out_texts(cfg) or HELD_OUT]
    lines = [f"character LM {path}"] + [f"  {s['corpus']:<16} {s['bpc']:.3f} bits/char  perplexity "
                                         f"{s['perplexity']:.2f}  ({s['lines']} lines, {s['tokens']} tokens)"
                                         for s in scores]
    return {"checkpoint": str(path), "scores": scores, "text": "\n".join(lines)}
