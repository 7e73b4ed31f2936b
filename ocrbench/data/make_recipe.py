"""Maintainers: fill a download recipe's ``files`` from a local copy of its pinned source.

    git --git-dir=REPO.git archive COMMIT | tar -x -C /tmp/src
    python -m ocrbench.data.make_recipe ocrbench/data/recipes/NAME.json /tmp/src 'data/*/*/*.jpg' \\
        'data/*/*/*.xml' --flatten --rename CITATION.CFF=CITATION.cff --check SHA256SUMS

The recipe's other fields (name, description, license, citation, source, base_url, postprocess) are written by
hand and kept; ``files`` is replaced by every file the patterns match, sorted by destination, with its sha256,
size, kind and, for images, the original width and height. ``--flatten`` keeps only file names as destinations
(a name met twice is an error); ``--check`` compares each sha256 with a ``sha256sum``-style list of source paths.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import DataError
from .download import Recipe, sha256_of

KIND_BY_SUFFIX = {".jpg": "image", ".jpeg": "image", ".png": "image", ".tif": "image", ".tiff": "image",
                  ".xml": "xml"}


def file_entry(root: Path, source: str, dest: str) -> dict:
    path = root / source
    kind = KIND_BY_SUFFIX.get(path.suffix.lower(), "text")
    entry = {"source": source, "dest": dest, "sha256": sha256_of(path), "size": path.stat().st_size, "kind": kind}
    if kind == "image":
        from PIL import Image

        with Image.open(path) as im:
            entry["width"], entry["height"] = im.size
    return entry


def collect(root: Path, patterns: list[str], flatten: bool, rename: dict[str, str]) -> list[dict]:
    sources = sorted({p.relative_to(root).as_posix() for pat in patterns for p in root.glob(pat) if p.is_file()})
    entries, seen = [], {}
    for source in sources:
        dest = rename.get(source, Path(source).name if flatten else source)
        if dest in seen:
            raise DataError(f"{source} and {seen[dest]} both flatten to {dest}")
        seen[dest] = source
        entries.append(file_entry(root, source, dest))
    return sorted(entries, key=lambda e: e["dest"])


def check_sums(entries: list[dict], sums_file: Path) -> None:
    sums = dict(reversed(line.split(maxsplit=1)) for line in sums_file.read_text().splitlines() if line.strip())
    sums = {k.strip(): v for k, v in sums.items()}
    wrong = [e["source"] for e in entries if e["source"] in sums and sums[e["source"]] != e["sha256"]]
    unlisted = [e["source"] for e in entries if e["source"] not in sums]
    if wrong:
        raise DataError(f"{len(wrong)} file(s) differ from {sums_file}: {wrong[:3]}")
    if unlisted:
        print(f"not in {sums_file.name} (checked by you): {', '.join(unlisted)}")


def dump(data: dict) -> str:
    """The recipe as JSON with one line per file, so that a diff shows each changed file."""
    head = json.dumps({k: v for k, v in data.items() if k != "files"}, indent=1, ensure_ascii=False)
    files = ",\n".join(f"  {json.dumps(f, ensure_ascii=False)}" for f in data["files"])
    return f'{head[:-2]},\n "files": [\n{files}\n ]\n}}\n'


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe", type=Path)
    p.add_argument("root", type=Path, help="a copy of the source at the recipe's pinned commit")
    p.add_argument("patterns", nargs="+", help="glob patterns relative to ROOT")
    p.add_argument("--flatten", action="store_true")
    p.add_argument("--rename", action="append", default=[], metavar="SOURCE=DEST")
    p.add_argument("--check", type=Path, help="sha256sum-style list of source paths to compare with")
    args = p.parse_args(argv)
    data = json.loads(args.recipe.read_text())
    data["files"] = collect(args.root, args.patterns, args.flatten, dict(r.split("=", 1) for r in args.rename))
    if args.check:
        check_sums(data["files"], args.check)
    Recipe.from_dict(data, str(args.recipe))  # the result must load
    args.recipe.write_text(dump(data))
    print(f"{args.recipe}: {len(data['files'])} files, {sum(e['size'] for e in data['files']):,} bytes")


if __name__ == "__main__":
    main()
