"""ocrbench viz: feature maps of a trained (or freshly initialised) recognizer on one line."""

from __future__ import annotations

from ..data.registry import DataConfig, create_dataset
from ..errors import UserError
from ..models import create_model
from ..runtime import make_collator
from ..train import load_model
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("viz", help="plot a recognizer's feature maps on one line image")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint.pt of a trained model")
    src.add_argument("--model", help="registered model name (random initial weights)")
    p.add_argument("--dataset", default="synth-lines")
    p.add_argument("--split", default="test")
    p.add_argument("--index", type=int, default=0, help="which line of the split")
    p.add_argument("--channels", type=int, default=3, help="most active channels shown per stage")
    p.add_argument("--out", default="feature_maps.png")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    try:
        from ..viz import feature_maps, plot_feature_maps
    except ImportError as e:
        raise UserError(f"plotting needs matplotlib: pip install 'ocrbench[plot]' ({e})") from None
    model = load_model(args.checkpoint) if args.checkpoint else create_model(args.model)
    height = model.info.input_height
    size = args.index + 1
    data = create_dataset(args.dataset, args.split, DataConfig(height=height, train_size=size, val_size=size,
                                                               test_size=size))
    batch = make_collator(model, model.charset, height)([data[args.index]])
    maps = feature_maps(model, batch.images, batch.widths)
    path = plot_feature_maps(batch.images, maps, args.out, args.channels,
                             title=f"{model.name}: {batch.texts[0]!r}")
    return {"path": str(path), "stages": [n for n, _ in maps], "text": f"wrote {path}"}
