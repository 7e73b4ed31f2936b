"""``ocrbench data download NAME``: datasets from outside a package registry, fetched on request and verified.

A **recipe** (one JSON file per dataset in ``ocrbench/data/recipes/``, or from an installed package through the
``ocrbench.recipes`` entry-point group) pins the source (repository + commit, or DOI), the base URL, and every
file: its path under the base URL, its path in the dataset folder, sha256, size in bytes, kind (``image`` /
``xml`` / ``text``) and, for images, the original width and height.

:func:`download` fetches the files into ``<cache>/datasets/.partial/<name>/`` (a cut-off file is resumed with an
HTTP Range request), verifies each one, runs the recipe's ``postprocess`` (e.g. :func:`document_splits`), writes
``MANIFEST.json`` and renames the staging folder to ``<cache>/datasets/<name>/`` in one step: a dataset folder
either is complete or does not exist. Every fault (wrong checksum, HTTP error, no network, disk full) is one
:class:`~ocrbench.errors.DataError` line; the finished files stay staged, so a rerun goes on from there.

**Mirrors** (``--from DIR`` or ``$OCRBENCH_MIRROR``: ``DIR/<name>/<destination path>``) are for offline
machines and may hold **reduced copies of the images**: an image whose sha256 differs is accepted from a mirror
only when it decodes and has the original's aspect ratio within the rounding of an integer downscale. XML, text
and split files must match their sha256 exactly, and from the network every file must. The manifest records
``image_source`` (``original`` or ``mirror (reduced copy)``) and the dataset **version**, a digest of the
non-image files only (what determines the lines and splits), so a full download and a mirror copy share it.
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
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import DataError, NotDownloaded, UnknownNameError, UserError
from ..records import atomic_write_text
from .cache import cache_home

RECIPES_DIR = Path(__file__).parent / "recipes"
ENTRY_POINT_GROUP = "ocrbench.recipes"
MIRROR_ENV = "OCRBENCH_MIRROR"
MANIFEST = "MANIFEST.json"
STAGING = ".partial"  # <cache>/datasets/.partial/<name>/: files of an unfinished download, kept for resuming
PART_SUFFIX = ".part"  # a file still being received
KINDS = ("image", "xml", "text")
ORIGINAL, REDUCED = "original", "mirror (reduced copy)"
TIMEOUT_S = 30  # per connect / read: a stalled server fails in half a minute instead of hanging the command
CHUNK = 1 << 16
USER_AGENT = "ocrbench-data-download"


# ---- recipes ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecipeFile:
    source: str  # path under the recipe's base URL
    dest: str  # path in the dataset folder
    sha256: str
    size: int  # bytes
    kind: str  # image, xml or text
    width: int | None = None  # original pixel size of an image: checks a mirror's reduced copy
    height: int | None = None


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    license: str
    citation: str
    source: dict  # {"repository": URL, "commit": SHA} or {"doi": ...}
    base_url: str
    files: tuple[RecipeFile, ...]
    postprocess: str | None = None  # name in POSTPROCESS, run on the staged folder before it is installed
    origin: str = ""  # the JSON file it was read from (for messages)
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @classmethod
    def from_dict(cls, data: dict, origin: str = "") -> Recipe:
        where = origin or data.get("name", "recipe")
        required = ("name", "description", "license", "citation", "source", "base_url", "files")
        missing = [k for k in required if k not in data]
        if missing:
            raise DataError(f"recipe {where}: missing field(s) {', '.join(missing)}")
        files = tuple(_recipe_file(f, where) for f in data["files"])
        dests = [f.dest for f in files]
        if len(set(dests)) != len(dests):
            raise DataError(f"recipe {where}: two files share a destination path")
        known = {k: data[k] for k in required if k != "files"}
        extra = {k: v for k, v in data.items() if k not in (*required, "postprocess")}
        return cls(**known, files=files, postprocess=data.get("postprocess"), origin=origin, extra=extra)


def _recipe_file(entry: dict, where: str) -> RecipeFile:
    try:
        f = RecipeFile(**entry)
    except TypeError as e:
        raise DataError(f"recipe {where}: bad file entry {entry}: {e}") from None
    if f.kind not in KINDS or not re.fullmatch(r"[0-9a-f]{64}", f.sha256) or f.size < 0:
        raise DataError(f"recipe {where}: file {f.dest}: kind must be one of {KINDS}, sha256 64 hex digits, "
                        f"size >= 0")
    if Path(f.dest).is_absolute() or ".." in Path(f.dest).parts:
        raise DataError(f"recipe {where}: destination {f.dest!r} must stay inside the dataset folder")
    return f


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        return Recipe.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read recipe {path}: {e}") from None


@lru_cache(maxsize=1)
def _all_recipes() -> dict[str, Recipe]:
    found: dict[str, Recipe] = {}
    for recipe in [*map(load_recipe, sorted(RECIPES_DIR.glob("*.json"))), *_plugin_recipes()]:
        if recipe.name in found:
            raise DataError(f"dataset recipe {recipe.name!r} is defined twice ({found[recipe.name].origin} and "
                            f"{recipe.origin})")
        found[recipe.name] = recipe
    return found


def _plugin_recipes() -> Iterable[Recipe]:
    """Recipes of installed packages: an ``ocrbench.recipes`` entry point names a package (or module) whose
    folder holds ``*.json`` recipes, or an object that is a recipe dict, a list of them, or a folder path."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as e:  # a broken third-party package must not take the packaged recipes down
            warnings.warn(f"skipped recipe plugin {ep.name!r} ({ep.value}): it failed to import with "
                          f"{type(e).__name__}: {e}", RuntimeWarning, stacklevel=3)
            continue
        if isinstance(obj, dict):
            yield Recipe.from_dict(obj, f"entry point {ep.name}")
        elif isinstance(obj, list):
            yield from (Recipe.from_dict(d, f"entry point {ep.name}") for d in obj)
        else:
            folder = Path(obj) if isinstance(obj, (str, os.PathLike)) else Path(obj.__file__).parent
            yield from map(load_recipe, sorted(folder.glob("*.json")))


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


# ---- verification -----------------------------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def reduced_copy_problem(path: Path, f: RecipeFile) -> str | None:
    """Why ``path`` is not an acceptable reduced copy of image ``f``, or None: it must decode and be the
    original's size divided by an integer k (each side within one pixel of W/k, H/k: any rounding)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for a broken file
        return f"does not decode as an image ({type(e).__name__}: {e})"
    if not (f.width and f.height):
        return "the recipe does not give the original's width and height"
    k = max(1, round(f.width / w))
    if abs(f.width / k - w) > 1 or abs(f.height / k - h) > 1:
        return f"{w}x{h} is not the original {f.width}x{f.height} reduced by an integer factor"
    return None


def verify(path: Path, f: RecipeFile, from_mirror: bool) -> tuple[str, str]:
    """``(sha256, how it was verified)`` of the staged file ``path``, or a DataError saying why it is refused."""
    actual = sha256_of(path)
    if actual == f.sha256:
        return actual, "sha256"
    if from_mirror and f.kind == "image":
        problem = reduced_copy_problem(path, f)
        if problem is None:
            return actual, "reduced copy: decodes, aspect ratio of the original"
        raise DataError(f"{f.dest}: sha256 differs from the recipe's and {problem}")
    raise DataError(f"{f.dest}: sha256 {actual[:16]}... does not match the recipe's {f.sha256[:16]}... "
                    f"({'only images may be reduced copies' if from_mirror else 'corrupt or changed at the source'})")


def dataset_version(files: dict[str, dict]) -> str:
    """Digest of the non-image files (XML, transcriptions, splits): what decides the lines, not the pixels, so
    full-resolution originals and a mirror's reduced copies give the same version."""
    text = sorted((dest, info["sha256"]) for dest, info in files.items() if info["kind"] != "image")
    return hashlib.sha256(json.dumps(text).encode()).hexdigest()[:12]


# ---- fetching ---------------------------------------------------------------------------------------------
def _disk_full(target: Path, recipe: Recipe) -> DataError:
    return DataError(f"disk full while writing {target} ({recipe.name} needs {recipe.size / 1e6:.1f} MB): free "
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
        hint = " (the recipe's path or --base-url is wrong, or the source moved)" if e.code == 404 else ""
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
    ``$OCRBENCH_MIRROR``) is a local folder ``MIRROR/<name>/<file>``; ``base_url`` replaces the recipe's (a copy
    of the source on another server)."""
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
    staging = datasets_root(cache_dir) / STAGING / name
    staging.mkdir(parents=True, exist_ok=True)
    origin = str(Path(mirror).expanduser() / name) if mirror else (base_url or recipe.base_url).rstrip("/")
    finish = postprocessor(recipe)  # before the download: an unknown name fails in seconds, not after it
    files = _fetch_all(recipe, staging, origin, bool(mirror), progress)
    for written in finish(staging) if finish else []:
        files[written] = {"sha256": sha256_of(staging / written), "size": (staging / written).stat().st_size,
                          "kind": "text", "verified": f"generated ({recipe.postprocess})"}
    manifest = _manifest(recipe, files, origin)
    try:
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    except OSError as e:
        raise (_disk_full(staging / MANIFEST, recipe) if e.errno == errno.ENOSPC else e) from None
    _install(staging, final)
    return {**manifest, "already": False, "path": str(final)}


def _fetch_all(recipe: Recipe, staging: Path, origin: str, from_mirror: bool, progress: bool) -> dict[str, dict]:
    from ..progress import progress_bar

    bar = progress_bar(total=recipe.size, progress=progress, desc=recipe.name, unit="B", unit_scale=True,
                       unit_divisor=1024)
    files = {}
    try:
        for f in recipe.files:
            files[f.dest] = _fetch_one(recipe, f, staging, origin, from_mirror, bar.update)
    finally:
        bar.close()
    return files


def _fetch_one(recipe: Recipe, f: RecipeFile, staging: Path, origin: str, from_mirror: bool,
               advance: Callable[[int], None]) -> dict:
    target = staging / f.dest
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file():  # finished by an earlier run: checked again, refetched when it no longer passes
        try:
            sha, how = verify(target, f, from_mirror)
            advance(f.size)
            return _file_entry(f, target, sha, how)
        except DataError:
            target.unlink()
    try:
        if from_mirror:
            target.with_name(target.name + PART_SUFFIX).unlink(missing_ok=True)
            copy_from_mirror(Path(origin) / f.dest, target, advance)
        else:
            fetch_url(f"{origin}/{f.source}", target, f.size, advance)
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


def _file_entry(f: RecipeFile, path: Path, sha: str, how: str) -> dict:
    entry = {"sha256": sha, "size": path.stat().st_size, "kind": f.kind, "verified": how}
    if sha != f.sha256:
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
    return {"name": name, "files": len(recipe.files), "bytes": recipe.size, "license": recipe.license,
            "downloaded": manifest is not None,
            "image_source": manifest.get("image_source") if manifest else None,
            "version": manifest.get("version") if manifest else None, "path": str(dataset_dir(name, cache_dir))}
