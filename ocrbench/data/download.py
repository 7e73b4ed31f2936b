"""``ocrbench data download NAME``: datasets from outside a package registry, fetched on request and verified.

A **recipe** (:class:`~ocrbench.data.sources.Recipe`) pins a collection in a few lines of code, in
:mod:`ocrbench.data.sources`, or from an installed package through the ``ocrbench.recipes`` entry-point group: the GitHub repository and commit, glob patterns of the data files, their number and size, and **one
digest**: the sha256 of their ``sha256sum`` listing (``<sha256>  <source path>`` lines sorted by path). Nothing
of the source is packaged, not even its file list: the list comes from the source at download time.

:func:`download` lists the files of the pinned commit (GitHub's git-tree API), fetches each into
``<cache>/datasets/.partial/<name>/`` (a cut-off file is resumed with an HTTP Range request), checks each against
the listing's git object hash (so a corrupt file is named), then the collection against the pinned digest, runs
the recipe's ``postprocess`` (e.g. :func:`document_splits`), writes ``MANIFEST.json`` and the originals'
listing ``SHA256SUMS.orig``, and renames the staging folder to ``<cache>/datasets/<name>/`` in one step: a
dataset folder either is complete or does not exist. Every fault (wrong checksum, HTTP error, no network, disk
full) is one :class:`~ocrbench.errors.DataError` line; the finished files stay staged, so a rerun goes on from
there.

**Mirrors** (``--from DIR`` or ``$OCRBENCH_MIRROR``: ``DIR/<name>/<destination path>`` plus the listing
``DIR/<name>/SHA256SUMS.orig``; every downloaded dataset folder is one) are for offline machines. The listing
must hash to the pinned digest; then each file must match its line, except that a mirror may hold **reduced
copies of the images**: an image whose sha256 differs is accepted only when it decodes and has the size of its
page (the XML of the same name) divided by an integer. The manifest records ``image_source`` (``original`` or
``mirror (reduced copy)``) and the dataset **version**, a digest of the non-image files only (what determines the
lines and splits), so a full download and a mirror copy share it.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DataError, NotDownloaded, UnknownNameError, UserError
from ..records import atomic_write_text
from .cache import cache_home
from .sources import IMAGE_SUFFIXES, PACKAGED, Recipe

ENTRY_POINT_GROUP = "ocrbench.recipes"
MIRROR_ENV = "OCRBENCH_MIRROR"
MANIFEST = "MANIFEST.json"
LISTING = "SHA256SUMS.orig"  # sha256sum lines of the original data files by source path (a folder's or a mirror's)
STAGING = ".partial"  # <cache>/datasets/.partial/<name>/: files of an unfinished download, kept for resuming
PART_SUFFIX = ".part"  # a file still being received
GITHUB_API = "https://api.github.com"  # where the pinned commit's file list comes from (tests point it elsewhere)
GITHUB_RAW = "https://raw.githubusercontent.com"  # and its files
ORIGINAL, REDUCED = "original", "mirror (reduced copy)"
TIMEOUT_S = 30  # per connect / read: a stalled server fails in half a minute instead of hanging the command
CHUNK = 1 << 16
USER_AGENT = "ocrbench-data-download"


# ---- recipes (the packaged pins: .sources) ----------------------------------------------------------------
def listing_text(sums: dict[str, str]) -> str:
    """The ``sha256sum`` listing of ``{source path: sha256}``, sorted by path: what a recipe's digest hashes."""
    return "".join(f"{sha}  {path}\n" for path, sha in sorted(sums.items()))


def listing_digest(sums: dict[str, str]) -> str:
    return hashlib.sha256(listing_text(sums).encode()).hexdigest()


def parse_listing(path: Path) -> dict[str, str]:
    """``{source path: sha256}`` of a ``sha256sum`` file (a ``*`` before the path marks binary mode)."""
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if not match:
            raise DataError(f"{path}, line {number}: not a sha256sum line (<64 hex digits>  <path>)")
        sums[match[2]] = match[1]
    return sums


@lru_cache(maxsize=1)
def _all_recipes() -> dict[str, Recipe]:
    found = dict(PACKAGED)
    for recipe in _plugin_recipes():
        if recipe.name in found:
            raise DataError(f"dataset recipe {recipe.name!r} is defined twice (a packaged one and an entry point's)")
        found[recipe.name] = recipe
    return found


def _plugin_recipes() -> Iterable[Recipe]:
    """Recipes of installed packages: an ``ocrbench.recipes`` entry point names a :class:`Recipe`, a dict of its
    fields, or a list of either."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as e:  # a broken third-party package must not take the packaged recipes down
            warnings.warn(f"skipped recipe plugin {ep.name!r} ({ep.value}): it failed to import with "
                          f"{type(e).__name__}: {e}", RuntimeWarning, stacklevel=3)
            continue
        for item in obj if isinstance(obj, list) else [obj]:
            yield item if isinstance(item, Recipe) else Recipe.from_dict(item, f"entry point {ep.name}")


def raw_url(recipe: Recipe) -> str:
    """Where GitHub serves the files of the recipe's commit (``<raw_url>/<source path>``)."""
    return f"{GITHUB_RAW}/{recipe.slug}/{recipe.commit}"


def list_recipes() -> list[str]:
    return sorted(_all_recipes())


def get_recipe(name: str) -> Recipe:
    recipes = _all_recipes()
    if name not in recipes:
        raise UnknownNameError("downloadable dataset", name, list(recipes))
    return recipes[name]


# ---- where datasets live ----------------------------------------------------------------------------------
def datasets_root(cache_dir: str | os.PathLike | None = None) -> Path:
    return cache_home(cache_dir) / "datasets"


def dataset_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return datasets_root(cache_dir) / name


def read_manifest(name: str, cache_dir: str | os.PathLike | None = None) -> dict | None:
    path = dataset_dir(name, cache_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def require_dataset(name: str, cache_dir: str | os.PathLike | None = None) -> tuple[Path, dict]:
    """The downloaded folder of ``name`` and its manifest; :class:`NotDownloaded` (naming the command that
    fetches it) when it is absent."""
    manifest = read_manifest(name, cache_dir)
    if manifest is None:
        raise NotDownloaded(name, str(dataset_dir(name, cache_dir)))
    return dataset_dir(name, cache_dir), manifest


# ---- postprocessing ---------------------------------------------------------------------------------------
POSTPROCESS: dict[str, Callable[[Path], list[str]]] = {}


def postprocess(name: str):
    """Register ``fn(folder) -> [written file names]``, run on a staged dataset folder before installing it.
    The dataset that needs one registers it in its own module (e.g. ``document_splits`` in
    :mod:`ocrbench.datasets.memorials`), so this module never imports a dataset."""

    def wrap(fn):
        POSTPROCESS[name] = fn
        return fn

    return wrap


# ---- the source's files ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceFile:
    source: str  # path in the repository
    dest: str  # path in the dataset folder
    document: bool  # a license / citation file: not in the pinned listing
    size: int | None = None  # bytes, when the listing says (GitHub's does; a mirror's sha256sum does not)
    git_sha1: str | None = None  # git's object hash of the file at the commit (from GitHub's listing)
    sha256: str | None = None  # from a mirror's listing

    @property
    def kind(self) -> str:
        suffix = PurePosixPath(self.dest).suffix.lower()
        return "image" if suffix in IMAGE_SUFFIXES else "xml" if suffix == ".xml" else "text"


def _source_file(recipe: Recipe, path: str, **known) -> SourceFile:
    return SourceFile(path, recipe.dest(path), path in recipe.documents, **known)


def _checked(recipe: Recipe, files: list[SourceFile], where: str) -> list[SourceFile]:
    """``files`` with the images last (a reduced copy is checked against its page's XML), after checking that
    the data files are as many as pinned, the documents all there, and no two share a destination."""
    data = [f for f in files if not f.document]
    if len(data) != recipe.count:
        raise DataError(f"{recipe.name}: {where} has {len(data)} data files matching {', '.join(recipe.data)} where "
                        f"the recipe pins {recipe.count} (commit {recipe.commit[:12]})")
    if missing := sorted(set(recipe.documents) - {f.source for f in files}):
        raise DataError(f"{recipe.name}: {where} has no {', '.join(missing)}")
    seen: dict[str, str] = {}
    for f in files:
        if f.dest in seen:
            raise DataError(f"recipe {recipe.name}: {f.source} and {seen[f.dest]} both go to {f.dest}")
        seen[f.dest] = f.source
    return sorted(files, key=lambda f: (f.kind == "image", f.source))


def github_listing(recipe: Recipe) -> list[SourceFile]:
    """The recipe's files at its commit, with their sizes and git hashes, from GitHub's git-tree API."""
    url = f"{GITHUB_API}/repos/{recipe.slug}/git/trees/{recipe.commit}?recursive=1"
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/vnd.github+json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            tree = json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise DataError(f"cannot list {recipe.repository} at {recipe.commit[:12]} ({url}): HTTP {e.code} {e.reason}"
                        + (" (GitHub's hourly limit for anonymous requests: try again later)" if e.code == 403 else
                           "")) from None
    except urllib.error.URLError as e:
        raise _network_error(url, e.reason) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException, json.JSONDecodeError) as e:
        raise _network_error(url, f"{type(e).__name__}: {e}") from None
    if tree.get("truncated"):
        raise DataError(f"GitHub's listing of {recipe.repository} is truncated (over 100,000 files): the recipe "
                        f"needs another source")
    blobs = {e["path"]: e for e in tree.get("tree", []) if e.get("type") == "blob"}
    files = [_source_file(recipe, path, size=e["size"], git_sha1=e["sha"]) for path, e in blobs.items()
             if recipe.selects(path) or path in recipe.documents]
    return _checked(recipe, files, f"{recipe.repository} at {recipe.commit[:12]}")


def mirror_listing(recipe: Recipe, folder: Path) -> list[SourceFile]:
    """The recipe's files in a mirror folder, from the folder's listing, which must hash to the pinned digest."""
    path = folder / LISTING
    if not path.is_file():
        raise DataError(f"{path} is missing: a mirror holds MIRROR/<dataset>/ with the files and {LISTING} (the "
                        f"originals' sha256sum lines by source path; every downloaded dataset folder has one)")
    try:
        sums = parse_listing(path)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    data = {p: sha for p, sha in sums.items() if recipe.selects(p)}
    if listing_digest(data) != recipe.digest:
        raise DataError(f"{path} does not list the files of {recipe.name} at commit {recipe.commit[:12]} ({len(data)} "
                        f"lines match, {recipe.count} pinned; their digest differs from the recipe's): a mirror "
                        f"of another version, or changed")
    files = [_source_file(recipe, p, sha256=sha) for p, sha in data.items()]
    files += [_source_file(recipe, p, sha256=sums.get(p)) for p in recipe.documents]
    return _checked(recipe, files, str(folder))


# ---- verification -----------------------------------------------------------------------------------------
def _digest(h, path: Path) -> str:
    """``h`` (a hashlib object) updated with the bytes of ``path``, read in 1 MiB blocks: its hex digest."""
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    return _digest(hashlib.sha256(), path)


def git_sha1_of(path: Path) -> str:
    """Git's object hash of a file (``git hash-object``): sha1 of ``blob <size>\\0`` and the bytes."""
    return _digest(hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False), path)


_PAGE_SIZE = (re.compile(r'<(?:\w+:)?Page\b[^>]*?\bWIDTH="(\d+)"[^>]*?\bHEIGHT="(\d+)"'),  # ALTO
              re.compile(r'<(?:\w+:)?Page\b[^>]*?\bimageWidth="(\d+)"[^>]*?\bimageHeight="(\d+)"'))  # PAGE


def page_size(xml: Path) -> tuple[int, int] | None:
    """The original image size that an ALTO or PAGE file declares for its page (None when it says none)."""
    try:
        head = xml.read_text(encoding="utf-8", errors="replace")[:20000]  # the Page element comes early
    except OSError:
        return None
    for pattern in _PAGE_SIZE:
        if match := pattern.search(head):
            return int(match[1]), int(match[2])
    return None


def reduced_copy_problem(path: Path, original: tuple[int, int] | None) -> str | None:
    """Why ``path`` is not an acceptable reduced copy of an image of size ``original``, or None: it must decode
    and be the original's size divided by an integer k (each side within one pixel of W/k, H/k: any rounding)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for a broken file
        return f"does not decode as an image ({type(e).__name__}: {e})"
    if original is None:
        return "no XML of the same name gives the original's size"
    k = max(1, round(original[0] / w))
    if abs(original[0] / k - w) > 1 or abs(original[1] / k - h) > 1:
        return f"{w}x{h} is not the original {original[0]}x{original[1]} reduced by an integer factor"
    return None


def verify(path: Path, f: SourceFile, from_mirror: bool) -> tuple[str, str]:
    """``(sha256, how it was verified)`` of the staged file ``path``, or a DataError saying why it is refused."""
    actual = sha256_of(path)
    if f.git_sha1 is not None:
        if git_sha1_of(path) == f.git_sha1:
            return actual, "git hash"
        raise DataError(f"{f.dest}: its git hash does not match the source's listing (corrupt or changed at the "
                        f"source)")
    if f.sha256 is None:  # a mirror's document (license, citation) that its listing does not cover
        return actual, "copied (not in the mirror's listing)"
    if actual == f.sha256:
        return actual, "sha256"
    if from_mirror and f.kind == "image":
        problem = reduced_copy_problem(path, page_size(path.with_suffix(".xml")))
        if problem is None:
            return actual, "reduced copy: decodes, aspect ratio of the original"
        raise DataError(f"{f.dest}: sha256 differs from the listing's and {problem}")
    raise DataError(f"{f.dest}: sha256 {actual[:16]}... does not match the listing's {f.sha256[:16]}... "
                    f"({'only images may be reduced copies' if from_mirror else 'corrupt or changed at the source'})")


def dataset_version(files: dict[str, dict]) -> str:
    """Digest of the non-image files (XML, transcriptions, splits): what decides the lines, not the pixels, so
    full-resolution originals and a mirror's reduced copies give the same version."""
    text = sorted((dest, info["sha256"]) for dest, info in files.items() if info["kind"] != "image")
    return hashlib.sha256(json.dumps(text).encode()).hexdigest()[:12]


# ---- fetching ---------------------------------------------------------------------------------------------
def _disk_full(target: Path, recipe: Recipe) -> DataError:
    return DataError(f"disk full while writing {target} ({recipe.name} needs {recipe.bytes / 1e6:.1f} MB): free "
                     f"space, or set OCRBENCH_CACHE to a folder on another disk; finished files are kept in "
                     f"{target.parent} and a rerun goes on from there")


def _network_error(url: str, reason: object) -> DataError:
    return DataError(f"cannot download {url}: {reason}. Check the network connection, or install from a local "
                     f"copy with --from DIR (or ${MIRROR_ENV}); a rerun resumes where this one stopped")


def fetch_url(url: str, target: Path, size: int, advance: Callable[[int], None]) -> None:
    """Download ``url`` to ``target`` through ``target.part``, resuming a part file with an HTTP Range request
    (a server that ignores Range sends the whole file, which replaces the part)."""
    part = target.with_name(target.name + PART_SUFFIX)
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if 0 < have:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            resumed = have > 0 and response.status == 206
            advance(have if resumed else 0)
            length = response.headers.get("Content-Length")
            promised = (have if resumed else 0) + int(length) if length and length.isdigit() else size
            with open(part, "ab" if resumed else "wb") as out:
                while block := response.read(CHUNK):
                    out.write(block)
                    advance(len(block))
    except urllib.error.HTTPError as e:
        if e.code == 416 and have == size:  # the part was already complete
            part.replace(target)
            return
        if e.code == 416:  # the part does not fit the file at the source: start it afresh (no Range then)
            part.unlink()
            return fetch_url(url, target, size, advance)
        hint = " (--base-url is wrong, or the source moved)" if e.code == 404 else ""
        raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}{hint}") from None
    except urllib.error.URLError as e:
        raise _network_error(url, e.reason) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as e:  # a stall or cut after the headers
        raise _network_error(url, f"{type(e).__name__}: {e}") from None
    got = part.stat().st_size
    if got < promised:  # the connection closed early: keep the part for a Range request
        raise _network_error(url, f"the connection closed after {got:,} of {promised:,} bytes")
    part.replace(target)


def copy_from_mirror(src: Path, target: Path, advance: Callable[[int], None]) -> None:
    if not src.is_file():
        raise DataError(f"{src} is missing from the mirror (expected MIRROR/<dataset>/<file>); "
                        f"mirror another copy, or download without --from / ${MIRROR_ENV}")
    part = target.with_name(target.name + PART_SUFFIX)
    shutil.copyfile(src, part)
    part.replace(target)
    advance(src.stat().st_size)


# ---- the download -----------------------------------------------------------------------------------------
def postprocessor(recipe: Recipe) -> Callable[[Path], list[str]] | None:
    """The registered postprocess of ``recipe`` (None when it has none)."""
    if not recipe.postprocess:
        return None
    if recipe.postprocess not in POSTPROCESS:
        raise DataError(f"recipe {recipe.name}: unknown postprocess {recipe.postprocess!r}; valid: "
                        f"{', '.join(sorted(POSTPROCESS))} (the datasets register theirs: import ocrbench.datasets)")
    return POSTPROCESS[recipe.postprocess]


def download(name: str | Recipe, *, mirror: str | os.PathLike | None = None, base_url: str | None = None,
             cache_dir: str | os.PathLike | None = None, progress: bool = True, force: bool = False) -> dict:
    """Fetch, verify and install dataset ``name`` (or a :class:`Recipe` not in the registry); returns its
    manifest (``already: True`` when it was installed before and ``force`` is off). ``mirror`` (default
    ``$OCRBENCH_MIRROR``) is a local folder ``MIRROR/<name>/<file>`` with its listing; ``base_url`` serves the
    source's paths instead of GitHub's raw files (a copy of the source on another server; the list of files
    still comes from GitHub)."""
    recipe = name if isinstance(name, Recipe) else get_recipe(name)
    name = recipe.name
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    if mirror and base_url:
        raise UserError("give either --from DIR (or $OCRBENCH_MIRROR) or --base-url, not both")
    final = dataset_dir(name, cache_dir)
    if not force and (manifest := read_manifest(name, cache_dir)) is not None:
        return {**manifest, "already": True, "path": str(final)}
    if not force and final.exists():
        raise DataError(f"{final} exists but has no {MANIFEST} (not made by a download): move it away, or "
                        f"replace it with --force")
    finish = postprocessor(recipe)  # before the download: an unknown name fails in seconds, not after it
    origin = str(Path(mirror).expanduser() / name) if mirror else (base_url or raw_url(recipe)).rstrip("/")
    listing = mirror_listing(recipe, Path(origin)) if mirror else github_listing(recipe)
    staging = datasets_root(cache_dir) / STAGING / name
    staging.mkdir(parents=True, exist_ok=True)
    files = _fetch_all(recipe, listing, staging, origin, bool(mirror), progress)
    originals = _originals(recipe, listing, files)
    for written in finish(staging) if finish else []:
        files[written] = {"sha256": sha256_of(staging / written), "size": (staging / written).stat().st_size,
                          "kind": "text", "verified": f"generated ({recipe.postprocess})"}
    manifest = _manifest(recipe, files, origin)
    try:
        atomic_write_text(staging / LISTING, listing_text(originals))
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    except OSError as e:
        raise (_disk_full(staging / MANIFEST, recipe) if e.errno == errno.ENOSPC else e) from None
    _install(staging, final)
    return {**manifest, "already": False, "path": str(final)}


def _originals(recipe: Recipe, listing: list[SourceFile], files: dict[str, dict]) -> dict[str, str]:
    """``{source path: sha256}`` of the original data files, which must hash to the pinned digest (a file the
    source's listing vouched for, in a list that is not the pinned one, fails here)."""
    originals = {f.source: files[f.dest].get("original_sha256", files[f.dest]["sha256"])
                 for f in listing if not f.document}
    if listing_digest(originals) != recipe.digest:
        raise DataError(f"{recipe.name}: the files of {recipe.repository} at {recipe.commit[:12]} are not the ones "
                        f"the recipe pins (their sha256 listing's digest differs): the recipe's patterns or digest "
                        f"are wrong")
    return originals


def _fetch_all(recipe: Recipe, listing: list[SourceFile], staging: Path, origin: str, from_mirror: bool,
               progress: bool) -> dict[str, dict]:
    from ..progress import progress_bar

    bar = progress_bar(total=recipe.bytes, progress=progress, desc=recipe.name, unit="B", unit_scale=True,
                       unit_divisor=1024)
    files = {}
    try:
        for f in listing:
            files[f.dest] = _fetch_one(recipe, f, staging, origin, from_mirror, bar.update)
    finally:
        bar.close()
    return files


def _fetch_one(recipe: Recipe, f: SourceFile, staging: Path, origin: str, from_mirror: bool,
               advance: Callable[[int], None]) -> dict:
    target = staging / f.dest
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file():  # finished by an earlier run: checked again, refetched when it no longer passes
        try:
            sha, how = verify(target, f, from_mirror)
            advance(target.stat().st_size)
            return _file_entry(f, target, sha, how)
        except DataError:
            target.unlink()
    try:
        if from_mirror:
            target.with_name(target.name + PART_SUFFIX).unlink(missing_ok=True)
            copy_from_mirror(Path(origin) / f.dest, target, advance)
        else:
            fetch_url(f"{origin}/{urllib.parse.quote(f.source)}", target, f.size or 0, advance)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            target.with_name(target.name + PART_SUFFIX).unlink(missing_ok=True)  # frees the space it took
            raise _disk_full(target, recipe) from None
        raise DataError(f"cannot write {target}: {e}") from None
    try:
        sha, how = verify(target, f, from_mirror)
    except DataError as e:
        target.unlink()  # never kept: a rerun fetches it again
        raise DataError(f"{recipe.name}: {e}; from {origin}/{f.dest if from_mirror else f.source}") from None
    return _file_entry(f, target, sha, how)


def _file_entry(f: SourceFile, path: Path, sha: str, how: str) -> dict:
    entry = {"sha256": sha, "size": path.stat().st_size, "kind": f.kind, "verified": how}
    if f.sha256 is not None and sha != f.sha256:
        entry["original_sha256"] = f.sha256
    return entry


def _manifest(recipe: Recipe, files: dict[str, dict], origin: str) -> dict:
    reduced = any(info.get("original_sha256") for info in files.values())
    return {"recipe": recipe.name, "source": recipe.source, "license": recipe.license, "citation": recipe.citation,
            "version": dataset_version(files), "image_source": REDUCED if reduced else ORIGINAL,
            "downloaded_from": origin, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": files}


def _install(staging: Path, final: Path) -> None:
    """Rename the staged folder to ``final`` in one step (a folder there, from ``--force``, is moved aside
    first and removed after)."""
    old = final.with_name(f".old-{final.name}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.replace(old)
    staging.replace(final)
    shutil.rmtree(old, ignore_errors=True)
    try:
        staging.parent.rmdir()  # the .partial folder, once no other download is staged there
    except OSError:
        pass


# ---- listing ----------------------------------------------------------------------------------------------
def recipe_status(name: str, cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    recipe, manifest = get_recipe(name), read_manifest(name, cache_dir)
    return {"name": name, "files": recipe.count + len(recipe.documents), "bytes": recipe.bytes,
            "license": recipe.license, "downloaded": manifest is not None,
            "image_source": manifest.get("image_source") if manifest else None,
            "version": manifest.get("version") if manifest else None, "path": str(dataset_dir(name, cache_dir))}
