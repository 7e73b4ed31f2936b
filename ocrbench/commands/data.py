"""ocrbench data preview|info|check|download: look at, check and fetch datasets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config import DataConfig, load_suite, resolve_config
from ..datasets import create_dataset, dataset_info
from ..errors import UserError
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("data", help="inspect datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    pv = dsub.add_parser("preview", help="write a contact sheet PNG of a dataset split")
    pv.add_argument("name", nargs="?", help="dataset name (or --suite)")
    pv.add_argument("--suite", help="the data a suite trains on: its dataset, height and options (e.g. pretrain)")
    pv.add_argument("--beside", nargs="+", metavar="NAME", default=[],
                    help="line datasets drawn under it on the same sheet, at the same height (e.g. the real "
                         "collections: copiste-dun-jour stanford-memorials)")
    pv.add_argument("--split", default="train")
    pv.add_argument("-n", type=int, default=24, help="lines on the sheet")
    pv.add_argument("--out", help="PNG path (default: <name>-<split>.png)")
    pv.add_argument("--root", help="folder of a user-supplied dataset (iam, emnist-lines...)")
    pv.add_argument("--height", type=int, help="line height, or page height for page datasets (default: 64 / 512)")
    add_json(pv)
    pv.set_defaults(handler=handle_preview)
    info = dsub.add_parser("info", help="size, splits, license and citation of a dataset")
    info.add_argument("name")
    add_json(info)
    info.set_defaults(handler=handle_info)
    check = dsub.add_parser("check", help="validate a user-supplied dataset folder (files, counts per split)")
    check.add_argument("name", help="dataset name (iam, emnist, emnist-lines, alto, pagexml) or kind:PATH")
    check.add_argument("--root", help="the dataset folder")
    check.add_argument("--splits", help="iam: split convention to count (aachen, the default; large; or a folder)")
    check.add_argument("--download", action="store_true", help="emnist: let torchvision download EMNIST into --root")
    check.add_argument("--skip-bad", action="store_true",
                       help="report unreadable files without failing (training would skip and count them)")
    add_json(check)
    check.set_defaults(handler=handle_check)
    dl = dsub.add_parser("download", help="download a dataset into the cache, verifying every checksum (--list: "
                                          "what can be downloaded)")
    dl.add_argument("name", nargs="?", help="dataset name (see --list)")
    dl.add_argument("--list", action="store_true", help="list the downloadable datasets and whether they are here")
    dl.add_argument("--from", dest="mirror", metavar="DIR",
                    help="install from a local mirror DIR/<name>/ (the files and their SHA256SUMS.orig; a downloaded "
                         "dataset folder is one) instead of the network (default: $OCRBENCH_MIRROR)")
    dl.add_argument("--base-url", help="fetch the files from this copy of the source instead of GitHub's raw files (the "
                    "list of files still comes from GitHub)")
    dl.add_argument("--force", action="store_true", help="download again even when the dataset is installed")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    add_json(dl)
    dl.set_defaults(handler=handle_download)


def handle_preview(args) -> dict:
    from ..data.preview import write_contact_sheet

    cfg = _preview_config(args)
    pages = dataset_info(cfg.name).task == "pages"
    if args.beside and any(dataset_info(name).task == "pages" for name in [cfg.name, *args.beside]):
        raise UserError("--beside draws line datasets side by side; a page dataset is previewed on its own")
    n = max(args.n, 1) if not pages or args.n != 24 else 4  # a sheet of 4 pages unless -n is given
    size = max(n, 64) if not pages else n
    cfg = replace(cfg, train_size=size, val_size=size, test_size=size)
    dataset = create_dataset(cfg.name, args.split, cfg)
    stem = args.suite or cfg.name.replace(":", "_").replace("/", "_")
    out = Path(args.out or f"{stem}-{args.split}.png")
    if pages:
        path = _page_sheet(dataset, out, min(n, len(dataset)))
    else:
        lines = _captioned(dataset, cfg.name, n) if args.beside else [dataset[i] for i in range(min(n, len(dataset)))]
        for name in args.beside:
            other = DataConfig(name=name, height=cfg.height, train_size=size, val_size=size, test_size=size)
            lines += _captioned(create_dataset(name, _beside_split(name, args.split), other), name, n)
        path = write_contact_sheet(lines, out, n=len(lines))
    return {"path": str(path), "text": f"wrote {path}"}


def _preview_config(args) -> DataConfig:
    """The data to draw: a suite's data section (--suite), or the dataset named with --root/--height."""
    if args.suite:
        if args.name:
            raise UserError("give a dataset name or --suite, not both")
        return load_suite(resolve_config(args.suite)).data
    if not args.name:
        raise UserError("name a dataset (ocrbench list datasets) or give --suite NAME")
    pages = dataset_info(args.name).task == "pages"
    return DataConfig(name=args.name, root=args.root, height=args.height or (512 if pages else DataConfig.height))


def _beside_split(name: str, split: str) -> str:
    """``split``, or where a collection has no such split (stanford-memorials: evaluation only), its test split."""
    splits = dataset_info(name).splits
    return split if split in splits else "test" if "test" in splits else splits[0]


def _captioned(dataset, name: str, n: int) -> list:
    """The first ``n`` lines of ``dataset``, each caption starting with the dataset's name."""
    return [replace(s, text=f"{name}: {s.text}") for s in (dataset[i] for i in range(min(n, len(dataset))))]


def _page_sheet(dataset, out: Path, n: int) -> Path:
    """Pages side by side with their ground-truth line boxes (green)."""
    from PIL import Image

    from ..pipeline import draw_boxes

    images = [draw_boxes(s.image, truth=s.boxes) for s in (dataset[i] for i in range(n))]
    sheet = Image.new("RGB", (sum(im.width for im in images) + 8 * (n - 1), max(im.height for im in images)), "gray")
    x = 0
    for im in images:
        sheet.paste(im, (x, 0))
        x += im.width + 8
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def handle_info(args) -> dict:
    info = dataset_info(args.name)
    out = {"name": info.name, "task": info.task, "splits": list(info.splits), "sizes": info.sizes or "n/a",
           "charset": info.charset or "IAM (79 symbols)", "description": info.description,
           "license": info.license, "citation": info.citation, "needs_root": info.needs_root}
    out["text"] = "\n".join(f"{k}: {v}" for k, v in out.items())
    return out


def handle_check(args) -> dict:
    from ..datasets import run_check

    report = run_check(args.name, args.root, splits=args.splits, download=args.download)
    out = report.as_dict(skip_bad=args.skip_bad)
    out["failed"] = not out["ok"]
    return out


def handle_download(args) -> dict:
    from ..data import download as dl

    if args.list:
        return _download_list(dl)
    if not args.name:
        raise UserError(f"name a dataset to download ({', '.join(dl.list_recipes())}), or use --list")
    manifest = dl.download(args.name, mirror=args.mirror, base_url=args.base_url, progress=not args.quiet,
                           force=args.force)
    what = "already downloaded" if manifest["already"] else f"downloaded from {manifest['downloaded_from']}"
    manifest["text"] = (f"{args.name}: {what}: {len(manifest['files'])} files verified, version "
                        f"{manifest['version']}, images: {manifest['image_source']}\n{manifest['path']}")
    return manifest


def _download_list(dl) -> dict:
    rows = [dl.recipe_status(name) for name in dl.list_recipes()]
    lines = [f"{'name':<20} {'files':>5} {'size':>9}  {'downloaded':<32} license"]
    for r in rows:
        here = f"yes ({r['image_source']})" if r["downloaded"] else "no"
        lines.append(f"{r['name']:<20} {r['files']:>5} {r['bytes'] / 1e6:>6.1f} MB  {here:<32} {r['license']}")
    return {"datasets": rows, "text": "\n".join(lines)}
