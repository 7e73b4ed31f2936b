"""ocrbench data preview|info|check|download: look at, check and fetch datasets."""

from __future__ import annotations

from pathlib import Path

from ..config import DataConfig
from ..datasets import create_dataset, dataset_info
from ..errors import UserError
from .common import add_json


def register(sub) -> None:
    p = sub.add_parser("data", help="inspect datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    pv = dsub.add_parser("preview", help="write a contact sheet PNG of a dataset split")
    pv.add_argument("name")
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
                    help="install from a local mirror DIR/<name>/ instead of the network (default: $OCRBENCH_MIRROR)")
    dl.add_argument("--base-url", help="fetch the recipe's files from this URL instead of the recipe's")
    dl.add_argument("--force", action="store_true", help="download again even when the dataset is installed")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    add_json(dl)
    dl.set_defaults(handler=handle_download)


def handle_preview(args) -> dict:
    from ..data.preview import write_contact_sheet

    pages = dataset_info(args.name).task == "pages"
    n = max(args.n, 1) if not pages or args.n != 24 else 4  # a sheet of 4 pages unless -n is given
    height = args.height or (512 if pages else DataConfig.height)
    size = max(n, 64) if not pages else n
    cfg = DataConfig(name=args.name, train_size=size, val_size=size, test_size=size, root=args.root, height=height)
    dataset = create_dataset(args.name, args.split, cfg)
    out = Path(args.out or f"{args.name.replace(':', '_').replace('/', '_')}-{args.split}.png")
    path = (_page_sheet(dataset, out, min(n, len(dataset))) if pages
            else write_contact_sheet(dataset, out, n=min(n, len(dataset))))
    return {"path": str(path), "text": f"wrote {path}"}


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
