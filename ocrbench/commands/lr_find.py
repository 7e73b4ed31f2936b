"""ocrbench lr-find: the learning-rate range test for a model on a dataset, with a plot."""

from __future__ import annotations

from ..bench.suite import prepare_model
from ..diagnostics.lr_find import check_lr_range, lr_range_test, plot_lr_finder
from .common import add_json, add_overrides, suite_from_args


def register(sub) -> None:
    p = sub.add_parser("lr-find", help="learning-rate range test: loss against an exponentially growing LR")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", help="dataset name (default: the config's, synth-lines)")
    p.add_argument("--config", help="suite YAML whose data and train sections to use")
    p.add_argument("--steps", type=int, help="steps of the sweep (default 100)")
    p.add_argument("--start-lr", type=float, help="first learning rate (default 1e-6)")
    p.add_argument("--end-lr", type=float, help="last learning rate (default 1.0)")
    p.add_argument("--out", default="lr_find.png", help="plot path (default lr_find.png)")
    add_overrides(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    check_lr_range(args.start_lr, args.end_lr, args.steps)  # before the model is built
    cfg = suite_from_args(args.config, args.overrides, {"data.name": args.dataset})
    model, train_set = prepare_model(args.model, {}, cfg)
    given = {"start_lr": args.start_lr, "end_lr": args.end_lr, "steps": args.steps}  # the rest: lr_range_test's
    result = lr_range_test(model, train_set, cfg.train, **{k: v for k, v in given.items() if v is not None})
    plot = plot_lr_finder(result, args.out, title=f"{args.model} on {cfg.data.name}")
    return {"model": args.model, **result.as_dict(), "plot": str(plot) if plot else None,
            "text": f"{args.model}: suggested lr {result.suggestion:.2e}"
                    + (f" (loss diverged at {result.diverged_at:.2e})" if result.diverged_at else "")
                    + (f"; plot: {plot}" if plot else "")}

