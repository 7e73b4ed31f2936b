"""ocrbench list [models|datasets]: what is registered."""

from __future__ import annotations

from ..datasets import dataset_info, list_datasets
from ..models import list_models, model_description, model_task
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("list", help="list registered models and datasets")
    p.add_argument("what", nargs="?", choices=["models", "datasets", "all"], default="all")
    p.add_argument("--pattern", default="*", help="shell-style filter, e.g. 'crnn*'")
    add_json(p)
    p.set_defaults(handler=handle)


def handle(args) -> dict:
    out: dict = {}
    if args.what in ("models", "all"):
        out["models"] = [{"name": n, "task": model_task(n), "description": model_description(n)}
                         for n in list_models(args.pattern)]
    if args.what in ("datasets", "all"):
        out["datasets"] = [{"name": n, "task": dataset_info(n).task, "description": dataset_info(n).description,
                            "sizes": dataset_info(n).sizes, "needs_root": dataset_info(n).needs_root}
                           for n in list_datasets(args.pattern)]
    lines = []
    if "models" in out:
        lines += ["models:"] + [f"  {m['name']:<24} {m['task']:<12} {m['description']}" for m in out["models"]]
    if "datasets" in out:
        lines += ["datasets:"] + [f"  {d['name']:<24} {d['description']}" for d in out["datasets"]]
    return {**out, "text": "\n".join(lines)}
