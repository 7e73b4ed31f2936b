"""ocrbench viz: what a recognizer's feature maps respond to.

Three pictures: the maps of each stage on one line (default); with ``--trace LAYER --channel C`` the top-k
lines of a split that excite one channel most, with the receptive field of each peak; with ``--history``
the maps recorded during training (:class:`~ocrbench.diagnostics.features.FeatureMapRecorder`) as a strip.
"""

from __future__ import annotations

from dataclasses import replace

from ..datasets import create_dataset
from ..errors import UserError
from ..harness.checkpoint import load_model
from ..models import create_model
from .common import add_json, add_overrides, suite_from_args


def register(sub) -> None:
    p = sub.add_parser("viz", help="feature maps of a recognizer: per stage on one line, top-k lines of a "
                                   "channel with receptive fields, or their development during training")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint.pt of a trained model")
    src.add_argument("--model", help="registered model name (random initial weights)")
    src.add_argument("--history", help="feature_history.pt recorded during training: draw it as a strip")
    p.add_argument("--dataset", help="dataset name (default: the config's, synth-lines)")
    p.add_argument("--config", help="suite YAML (or shipped name, e.g. quick) whose data section to use")
    p.add_argument("--split", default="test")
    p.add_argument("--index", type=int, default=0, help="which line of the split (per-stage maps)")
    p.add_argument("--channels", type=int, default=3, help="most active channels shown per stage")
    p.add_argument("--trace", metavar="LAYER", help="a layer as in model.named_modules(), e.g. stages.2: show "
                                                    "the lines that excite --channel most")
    p.add_argument("--channel", type=int, help="channel of --trace (default 0) or of --history (default: mean)")
    p.add_argument("--top-k", type=int, default=8, help="lines shown by --trace (default 8)")
    p.add_argument("--lines", type=int, default=200, help="lines of the split searched by --trace (default 200)")
    p.add_argument("--out", help="PNG path (default feature_maps.png, top_activations.png or feature_strip.png)")
    add_overrides(p)
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise UserError(f"plotting needs matplotlib: pip install 'ocrbench[plot]' ({e})") from None
    if args.history:
        return _strip(args)
    model = load_model(args.checkpoint) if args.checkpoint else create_model(args.model)
    return _trace(args, model) if args.trace else _stage_maps(args, model)


def _dataset(args, model, size: int):
    """The first ``size`` lines of the split (generated data is a pure function of split, index and seed, so
    a smaller size gives the same lines), at the model's line height, with the config's data section."""
    data = suite_from_args(args.config, args.overrides, {"data.name": args.dataset}).data
    sizes = {f"{args.split}_size": size} if args.split in ("train", "val", "test") else {}
    return create_dataset(data.name, args.split, replace(data, height=model.info.input_height, **sizes))


def _stage_maps(args, model) -> dict:
    from ..diagnostics.viz import feature_maps, plot_feature_maps

    data = _dataset(args, model, args.index + 1)
    batch = model.collate([data[args.index]])
    maps = feature_maps(model, batch.images, batch.widths)
    path = plot_feature_maps(batch.images, maps, args.out or "feature_maps.png", args.channels,
                             title=f"{model.name}: {batch.texts[0]!r}")
    return {"path": str(path), "stages": [n for n, _ in maps], "text": f"wrote {path}"}


def _trace(args, model) -> dict:
    from ..diagnostics.features import top_activations, trace_peaks
    from ..diagnostics.viz import plot_top_activations

    if args.top_k < 1 or args.lines < 1:
        raise UserError("--top-k and --lines must be >= 1")
    channel = args.channel or 0
    data = _dataset(args, model, args.lines)
    peaks = top_activations(model, data, args.trace, channel, args.top_k, limit=args.lines)
    traced = trace_peaks(model, data, args.trace, channel, peaks)
    path = plot_top_activations(traced, args.out or "top_activations.png",
                                title=f"{model.name} {args.trace} channel {channel}: top {len(traced)} of "
                                      f"{min(args.lines, len(data))} {args.split} lines\n(cyan: theoretical "
                                      "receptive field; red: input gradient, the effective field)")
    rows = [{"index": t.peak.index, "activation": round(t.peak.value, 4), "text": t.peak.text,
             "feature_yx": [t.peak.y, t.peak.x], "field_box": [t.box.top, t.box.bottom, t.box.left, t.box.right]}
            for t in traced]
    fields = sorted({(t.box.width, t.box.height) for t in traced})
    return {"path": str(path), "layer": args.trace, "channel": channel, "peaks": rows,
            "text": f"wrote {path}: {len(rows)} lines, receptive field(s) {fields} (width, height) px"}


def _strip(args) -> dict:
    from ..diagnostics.features import FeatureHistory
    from ..diagnostics.viz import plot_feature_strip

    history = FeatureHistory.load(args.history)
    path = plot_feature_strip(history, args.out or "feature_strip.png", args.channel)
    return {"path": str(path), "layer": history.layer, "steps": history.steps,
            "text": f"wrote {path}: {history.layer} at steps {history.steps}"}
