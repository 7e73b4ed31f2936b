"""Maintainers: the pin of a download recipe (data file count, bytes, digest) from a copy of its source.

    git --git-dir=REPO.git archive COMMIT | tar -x -C /tmp/src
    python -m ocrbench.data.pin /tmp/src 'data/*/*/*.jpg' 'data/*/*/*.xml' --documents CITATION.CFF

prints the ``count``, ``bytes`` and ``digest`` to write into the :class:`~ocrbench.data.download.Recipe` (the
sha256 of the data files' ``sha256sum`` listing, sorted by path: ``sha256sum`` of the same files, sorted,
gives the same listing). ``bytes`` includes the documents (license, citation), which the digest does not cover.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DataError
from .download import listing_digest, sha256_of
from .sources import glob_match


def pin(root: Path, patterns: list[str], documents: list[str]) -> dict:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    data = [f for f in files if any(glob_match(f, pattern) for pattern in patterns)]
    if missing := [d for d in documents if d not in files]:
        raise DataError(f"not in {root}: {', '.join(missing)}")
    if not data:
        raise DataError(f"no file under {root} matches {', '.join(patterns)}")
    return {"count": len(data), "bytes": sum((root / f).stat().st_size for f in [*data, *documents]),
            "digest": listing_digest({f: sha256_of(root / f) for f in data})}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="a copy of the source at the recipe's pinned commit")
    p.add_argument("patterns", nargs="+", help="the recipe's data patterns (``*`` stays inside one folder)")
    p.add_argument("--documents", nargs="*", default=[], help="license / citation files, by source path")
    args = p.parse_args(argv)
    for key, value in pin(args.root, args.patterns, args.documents).items():
        print(f"{key}={value!r}")


if __name__ == "__main__":
    main()
