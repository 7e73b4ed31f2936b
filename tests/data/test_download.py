"""``ocrbench data download``: a tiny recipe whose source (raw files and git-tree listing) a local HTTP server
plays (success, resume, every fault, and a rerun after each), the mirror path (reduced images accepted, tampered
XML refused, the listing checked against the pin), the three real recipes from the shared mirror (skipped
without it) and ``--list``."""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from ocrbench.cli import main
from ocrbench.data import download as dl
from ocrbench.data.sources import glob_match
from ocrbench.errors import DataError, UnknownNameError

NAME = "tiny-pages"
COMMIT = "0" * 40
XML = b'<?xml version="1.0"?>\n<alto><Layout><Page WIDTH="90"\n  HEIGHT="60"/></Layout></alto>\n'
TEXT = b"a text file that decides the lines\n" * 40
LICENSE = b"CC0: no rights reserved\n"


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 200).save(out, "PNG")
    return out.getvalue()


def git_sha1(body: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()


IMAGE = png(90, 60)
SOURCE = {"pages/page.xml": XML, "pages/page.png": IMAGE, "notes.txt": TEXT, "LICENSE": LICENSE,
          "pages/unrelated.md": b"not selected\n"}
DATA = ("pages/page.xml", "pages/page.png", "notes.txt")
TREE = f"repos/local/tiny/git/trees/{COMMIT}?recursive=1"  # GitHub's listing of the pinned commit


def raw(path: str) -> str:
    """Where the raw file of source path ``path`` is served (GitHub's raw layout: OWNER/NAME/COMMIT/PATH)."""
    return f"local/tiny/{COMMIT}/{path}"


# ---- a local server ---------------------------------------------------------------------------------------
class Server:
    """Serves the source's raw files and its git-tree listing on 127.0.0.1, with Range support; records every
    request's path and Range header; a path in ``cut`` is sent half and the connection closed (once); the
    listing describes SOURCE whatever the served files become (a changed file then fails its git hash)."""

    def __init__(self, files: dict[str, bytes]):
        tree = [{"path": p, "type": "blob", "sha": git_sha1(b), "size": len(b)} for p, b in files.items()]
        tree.append({"path": "pages", "type": "tree", "sha": "1" * 40})
        self.files = {raw(p): b for p, b in files.items()} | {TREE: json.dumps({"tree": tree}).encode()}
        self.requests, self.cut, self.refuse = [], set(), {}  # refuse: path -> HTTP status to answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.lstrip("/")
                server.requests.append((path, self.headers.get("Range")))
                if path not in server.files or path in server.refuse:
                    self.send_error(server.refuse.get(path, 404))
                    return
                body, start = server.files[path], 0
                if rng := self.headers.get("Range"):
                    start = int(rng.removeprefix("bytes=").rstrip("-"))
                    if start >= len(body):
                        self.send_error(416)
                        return
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if path in server.cut:
                    server.cut.discard(path)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    s = Server(SOURCE)
    yield s
    s.close()


def recipe_dict() -> dict:
    return {"name": NAME, "description": "two files and a picture", "license": "CC0", "citation": "the tests",
            "repository": "https://github.com/local/tiny", "commit": COMMIT,
            "data": ["pages/*.xml", "pages/*.png", "notes.txt"], "count": 3,
            "bytes": sum(len(SOURCE[p]) for p in (*DATA, "LICENSE")), "documents": ["LICENSE"], "flatten": True,
            "digest": dl.listing_digest({p: hashlib.sha256(SOURCE[p]).hexdigest() for p in DATA})}


@pytest.fixture
def recipe(server, monkeypatch) -> dl.Recipe:
    monkeypatch.setattr(dl, "GITHUB_API", server.url)
    monkeypatch.setattr(dl, "GITHUB_RAW", server.url)
    return dl.Recipe.from_dict(recipe_dict(), "test recipe")


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def fetch(recipe, cache, **kw) -> dict:
    return dl.download(recipe, cache_dir=cache, progress=False, **kw)


def assert_nothing_half_made(cache: Path) -> None:
    """No dataset folder, and nothing but the staging folder beside where it would be."""
    root = dl.datasets_root(cache)
    assert not (root / NAME).exists()
    assert not root.exists() or {p.name for p in root.iterdir()} <= {dl.STAGING}


def assert_installed(cache: Path, image_source: str = dl.ORIGINAL) -> dict:
    folder = dl.dataset_dir(NAME, cache)
    assert (folder / "page.xml").read_bytes() == XML and (folder / "notes.txt").read_bytes() == TEXT
    assert (folder / "LICENSE").read_bytes() == LICENSE and not (folder / "unrelated.md").exists()
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["recipe"] == NAME and manifest["source"]["commit"] == COMMIT
    assert manifest["image_source"] == image_source and set(manifest["files"]) == {"page.xml", "page.png",
                                                                                 "notes.txt", "LICENSE"}
    # the originals' listing: a folder made by a download is a mirror for another machine
    sums = dl.parse_listing(folder / dl.LISTING)
    assert sums == {p: hashlib.sha256(SOURCE[p]).hexdigest() for p in DATA}
    assert not (dl.datasets_root(cache) / dl.STAGING).exists()  # the staging folder is gone once installed
    return manifest


# ---- from the network -------------------------------------------------------------------------------------
def test_download_lists_the_commit_verifies_and_installs_with_a_manifest(recipe, server, cache):
    out = fetch(recipe, cache)
    manifest = assert_installed(cache)
    assert (dl.dataset_dir(NAME, cache) / "page.png").read_bytes() == IMAGE and out["already"] is False
    assert {f["verified"] for f in manifest["files"].values()} == {"git hash"}
    assert manifest["version"] == dl.dataset_version(manifest["files"]) and len(manifest["version"]) == 12
    assert (TREE, None) in server.requests and (raw("pages/unrelated.md"), None) not in server.requests
    assert fetch(recipe, cache)["already"] is True  # a second call finds it installed


def test_a_cut_off_file_is_resumed_with_a_range_request(recipe, server, cache):
    server.cut.add(raw("pages/page.png"))  # the last file fetched (images come last)
    with pytest.raises(DataError, match="closed after"):
        fetch(recipe, cache)
    assert_nothing_half_made(cache)
    part = dl.datasets_root(cache) / dl.STAGING / NAME / ("page.png" + dl.PART_SUFFIX)
    assert part.stat().st_size == len(IMAGE) // 2
    server.requests.clear()
    fetch(recipe, cache)
    assert (raw("pages/page.png"), f"bytes={len(IMAGE) // 2}-") in server.requests
    assert (raw("pages/page.xml"), None) not in server.requests  # finished files are not fetched again
    assert_installed(cache)


def test_a_part_file_that_is_already_whole_is_kept(recipe, server, cache):
    staged = dl.datasets_root(cache) / dl.STAGING / NAME
    staged.mkdir(parents=True)
    (staged / ("notes.txt" + dl.PART_SUFFIX)).write_bytes(TEXT)  # received in full, cut before its rename
    fetch(recipe, cache)
    assert (raw("notes.txt"), f"bytes={len(TEXT)}-") in server.requests  # answered 416: nothing more to send
    assert_installed(cache)


def test_a_changed_file_is_refused_by_its_git_hash_and_dropped(recipe, server, cache):
    server.files[raw("notes.txt")] = TEXT.replace(b"lines", b"LINES")
    with pytest.raises(DataError, match="notes.txt: its git hash does not match") as err:
        fetch(recipe, cache)
    assert "\n" not in str(err.value)
    assert_nothing_half_made(cache)
    assert not (dl.datasets_root(cache) / dl.STAGING / NAME / "notes.txt").exists()
    server.files[raw("notes.txt")] = TEXT
    fetch(recipe, cache)
    assert_installed(cache)


def test_from_the_network_even_an_image_must_match_exactly(recipe, server, cache):
    server.files[raw("pages/page.png")] = png(45, 30)  # a fine reduced copy, but not from a mirror
    with pytest.raises(DataError, match="page.png: its git hash"):
        fetch(recipe, cache)
    assert_nothing_half_made(cache)


@pytest.mark.parametrize("change, match", [({"count": 4}, "3 data files matching .* pins 4"),
                                           ({"digest": "f" * 64}, "are not the ones the recipe pins"),
                                           ({"documents": ["LICENSE", "CITATION.cff"]}, "has no CITATION.cff")])
def test_a_source_that_is_not_the_pinned_collection_is_refused(server, cache, monkeypatch, change, match):
    monkeypatch.setattr(dl, "GITHUB_API", server.url)
    monkeypatch.setattr(dl, "GITHUB_RAW", server.url)
    with pytest.raises(DataError, match=match):
        fetch(dl.Recipe.from_dict({**recipe_dict(), **change}), cache)
    assert_nothing_half_made(cache)


@pytest.mark.parametrize("status, match", [(403, "HTTP 403 .*hourly limit"), (404, "cannot list .*HTTP 404")])
def test_a_listing_refused_by_github_is_one_line(recipe, server, cache, status, match):
    server.refuse[TREE] = status
    with pytest.raises(DataError, match=match) as err:
        fetch(recipe, cache)
    assert "\n" not in str(err.value)
    assert_nothing_half_made(cache)


def test_http_404_is_one_line(recipe, server, cache):
    server.refuse[raw("pages/page.png")] = 404
    with pytest.raises(DataError, match="HTTP 404") as err:
        fetch(recipe, cache)
    assert "\n" not in str(err.value) and "pages/page.png" in str(err.value)
    assert_nothing_half_made(cache)
    del server.refuse[raw("pages/page.png")]
    fetch(recipe, cache)
    assert_installed(cache)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_no_network_is_one_line_naming_the_mirror_option(recipe, cache, monkeypatch):
    with pytest.raises(DataError, match="cannot download .*--from DIR") as err:  # the files' server is away
        fetch(recipe, cache, base_url=f"http://127.0.0.1:{closed_port()}")
    assert "\n" not in str(err.value)
    assert_nothing_half_made(cache)
    fetch(recipe, cache)  # the recipe's own server
    assert_installed(cache)
    monkeypatch.setattr(dl, "GITHUB_API", f"http://127.0.0.1:{closed_port()}")  # and the listing's
    with pytest.raises(DataError, match="cannot download .*--from DIR"):
        fetch(recipe, cache, force=True)


def test_disk_full_is_one_line_and_frees_the_partial_file(recipe, cache, monkeypatch):
    real_open = builtins.open

    class Full(io.RawIOBase):
        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_open(path, mode="r", *args, **kw):
        if "b" in mode and ("w" in mode or "a" in mode) and str(path).endswith("notes.txt" + dl.PART_SUFFIX):
            real_open(path, mode).close()
            return Full()
        return real_open(path, mode, *args, **kw)

    monkeypatch.setattr(dl, "open", full_open, raising=False)  # the module's writes only
    with pytest.raises(DataError, match="disk full .*OCRBENCH_CACHE"):
        fetch(recipe, cache)
    assert_nothing_half_made(cache)
    assert not list((dl.datasets_root(cache) / dl.STAGING).rglob("*" + dl.PART_SUFFIX))
    monkeypatch.setattr(dl, "open", real_open, raising=False)
    fetch(recipe, cache)
    assert_installed(cache)


def test_force_replaces_an_installed_dataset(recipe, cache):
    (dl.dataset_dir(NAME, cache) / "mine").mkdir(parents=True)
    with pytest.raises(DataError, match="has no MANIFEST.json"):  # a folder no download made is left alone
        fetch(recipe, cache)
    first = fetch(recipe, cache, force=True)
    assert not (dl.dataset_dir(NAME, cache) / "mine").exists()
    again = fetch(recipe, cache, force=True)
    assert again["already"] is False and again["version"] == first["version"]
    assert_installed(cache)


# ---- from a mirror ----------------------------------------------------------------------------------------
def make_mirror(tmp_path: Path, image: bytes = IMAGE, xml: bytes = XML, listing: dict | None = None) -> Path:
    """A mirror as the shared copies are: flattened files and the originals' sha256sum listing."""
    folder = tmp_path / "mirror" / NAME
    folder.mkdir(parents=True)
    for name, body in (("page.xml", xml), ("page.png", image), ("notes.txt", TEXT), ("LICENSE", LICENSE)):
        (folder / name).write_bytes(body)
    sums = listing or {p: hashlib.sha256(SOURCE[p]).hexdigest() for p in DATA}
    (folder / dl.LISTING).write_text(dl.listing_text(sums))
    return folder.parent


def test_a_mirror_may_hold_a_reduced_image_and_gets_the_same_version(recipe, cache, tmp_path, monkeypatch):
    full = fetch(recipe, tmp_path / "full")
    monkeypatch.setenv(dl.MIRROR_ENV, str(make_mirror(tmp_path, image=png(45, 30))))  # half size
    fetch(recipe, cache)
    manifest = assert_installed(cache, dl.REDUCED)
    image = manifest["files"]["page.png"]
    assert image["verified"].startswith("reduced copy") and image["original_sha256"] != image["sha256"]
    assert manifest["files"]["page.xml"]["verified"] == "sha256"
    assert manifest["files"]["LICENSE"]["verified"] == "copied (not in the mirror's listing)"
    assert manifest["version"] == full["version"]  # the version depends on the XML and text, never the pixels


def test_a_downloaded_folder_is_a_mirror(recipe, cache, tmp_path):
    full = fetch(recipe, tmp_path / "full")
    copy = fetch(recipe, cache, mirror=dl.datasets_root(tmp_path / "full"))
    assert copy["version"] == full["version"] and copy["image_source"] == dl.ORIGINAL
    assert_installed(cache)


@pytest.mark.parametrize("fault, match", [("xml", "page.xml: sha256 .*only images"),
                                          ("aspect", "page.png: .*not the original 90x60"),
                                          ("undecodable", "page.png: .*does not decode")])
def test_a_mirror_with_a_tampered_file_is_refused(recipe, cache, tmp_path, fault, match):
    mirror = make_mirror(tmp_path, xml=XML.replace(b"1.0", b"1.1") if fault == "xml" else XML,
                         image={"aspect": png(45, 45), "undecodable": IMAGE[:40]}.get(fault, IMAGE))
    with pytest.raises(DataError, match=match):
        fetch(recipe, cache, mirror=mirror)
    assert_nothing_half_made(cache)


def test_a_file_missing_from_the_mirror_is_named(recipe, cache, tmp_path):
    mirror = make_mirror(tmp_path)
    (mirror / NAME / "notes.txt").unlink()
    with pytest.raises(DataError, match="notes.txt is missing from the mirror"):
        fetch(recipe, cache, mirror=mirror)
    assert_nothing_half_made(cache)


def test_a_mirror_without_the_pinned_listing_is_refused(recipe, cache, tmp_path):
    mirror = make_mirror(tmp_path)
    (mirror / NAME / dl.LISTING).unlink()
    with pytest.raises(DataError, match="SHA256SUMS.orig is missing"):
        fetch(recipe, cache, mirror=mirror)
    other = {**{p: hashlib.sha256(SOURCE[p]).hexdigest() for p in DATA}, "notes.txt": "0" * 64}
    (mirror / NAME / dl.LISTING).write_text(dl.listing_text(other))  # a listing of another version
    with pytest.raises(DataError, match="does not list the files of tiny-pages"):
        fetch(recipe, cache, mirror=mirror)
    (mirror / NAME / dl.LISTING).write_text("not a listing\n")
    with pytest.raises(DataError, match="line 1: not a sha256sum line"):
        fetch(recipe, cache, mirror=mirror)
    assert_nothing_half_made(cache)


# ---- recipes ----------------------------------------------------------------------------------------------
def test_recipes_are_packaged_pins_and_checked():
    assert dl.list_recipes() == ["copiste-dun-jour", "iam-splits", "stanford-memorials"]
    with pytest.raises(UnknownNameError, match="Valid downloadable datasets: copiste-dun-jour, iam-splits"):
        dl.get_recipe("stanford")
    bad = recipe_dict()
    del bad["citation"]
    with pytest.raises(DataError, match="missing field.*citation"):
        dl.Recipe.from_dict(bad)
    with pytest.raises(DataError, match="unknown field.*files"):
        dl.Recipe.from_dict({**recipe_dict(), "files": []})
    with pytest.raises(DataError, match="unknown postprocess"):  # before anything is downloaded
        dl.postprocessor(dl.Recipe.from_dict({**recipe_dict(), "postprocess": "shuffle"}))
    with pytest.raises(DataError, match="inside the dataset folder"):
        dl.Recipe.from_dict({**recipe_dict(), "rename": [["notes.txt", "../outside.txt"]], "documents": ["notes.txt"]})
    with pytest.raises(DataError, match="commit must be 40 hex digits"):
        dl.Recipe.from_dict({**recipe_dict(), "commit": "main"})


def test_globs_stay_inside_one_folder():
    assert glob_match("data/a/b.jpg", "data/*/*.jpg") and not glob_match("data/a/c/b.jpg", "data/*/*.jpg")
    assert glob_match("IAM-B/test.txt", "IAM-[BCD]/test.txt") and not glob_match("x/notes.txt", "notes.txt")


def test_an_entry_point_adds_recipes(monkeypatch):
    class EntryPoint:
        name = "plugin"

        def load(self):
            return [{**recipe_dict(), "name": "plugin-pages"}]

    monkeypatch.setattr(dl.metadata, "entry_points", lambda group: [EntryPoint()] if group == dl.ENTRY_POINT_GROUP
                        else [])
    dl._all_recipes.cache_clear()
    try:
        assert "plugin-pages" in dl.list_recipes() and "stanford-memorials" in dl.list_recipes()
    finally:
        monkeypatch.undo()
        dl._all_recipes.cache_clear()


def test_real_recipes_pin_a_commit_and_a_digest_and_package_no_file_list():
    for name in dl.list_recipes():
        r = dl.get_recipe(name)
        assert r.repository.startswith("https://github.com/") and r.license and r.citation and r.count > 0
        assert dl.raw_url(r).startswith("https://raw.githubusercontent.com/") and r.commit in dl.raw_url(r)
    assert dl.get_recipe("copiste-dun-jour").postprocess == "document_splits"
    package = Path(dl.__file__).parents[1]
    assert not [p for p in package.rglob("*.json") if p.name != "zoo_index.json"]  # no manifests of others' files


def test_pin_of_a_source_copy_is_the_recipe_pin(tmp_path):
    from ocrbench.data.pin import pin

    for path, body in SOURCE.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(body)
    r = recipe_dict()
    assert pin(tmp_path, r["data"], r["documents"]) == {k: r[k] for k in ("count", "bytes", "digest")}
    with pytest.raises(DataError, match="not in .*: CITATION.cff"):
        pin(tmp_path, r["data"], ["CITATION.cff"])


# ---- the CLI ----------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_registry(recipe, monkeypatch):
    """The tiny recipe as the only packaged one."""
    monkeypatch.setattr(dl, "PACKAGED", {NAME: recipe})
    dl._all_recipes.cache_clear()
    yield
    monkeypatch.undo()
    dl._all_recipes.cache_clear()


def test_cli_download_list_and_faults(tiny_registry, tmp_path, capsys):
    assert main(["data", "download", "--list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["datasets"][0] | {"path": ""} == {
        "name": NAME, "files": 4, "bytes": len(XML) + len(IMAGE) + len(TEXT) + len(LICENSE), "license": "CC0",
        "downloaded": False, "image_source": None, "version": None, "path": ""}
    assert main(["data", "download", NAME, "--base-url", f"http://127.0.0.1:{closed_port()}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ocrbench: error: cannot download") and err.count("\n") == 1
    assert main(["data", "download", NAME, "--quiet"]) == 0
    assert "4 files verified" in capsys.readouterr().out
    assert main(["data", "download", "--list"]) == 0
    assert "yes (original)" in capsys.readouterr().out
    assert main(["data", "download", "tiny"]) == 2
    assert f"Valid downloadable datasets: {NAME}" in capsys.readouterr().err


# ---- the real recipes, from the shared mirror -------------------------------------------------------------
@pytest.mark.parametrize("name", ["iam-splits", "stanford-memorials", "copiste-dun-jour"])
def test_real_recipe_from_the_shared_mirror(name, shared_download, shared_real):
    folder = shared_download(name)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    recipe = dl.get_recipe(name)
    sums = dl.parse_listing(folder / dl.LISTING)  # the pinned originals' listing, written by the download
    assert len(sums) == recipe.count and dl.listing_digest(sums) == recipe.digest
    assert {recipe.dest(p) for p in (*sums, *recipe.documents)} <= set(manifest["files"])
    for source, sha in sums.items():
        entry = manifest["files"][recipe.dest(source)]
        assert dl.sha256_of(folder / recipe.dest(source)) == entry["sha256"]
        if entry["kind"] == "image":
            assert entry["verified"] in ("sha256", "reduced copy: decodes, aspect ratio of the original")
        else:
            assert entry["verified"] == "sha256" and entry["sha256"] == sha
    assert manifest["image_source"] == (dl.ORIGINAL if name == "iam-splits" else dl.REDUCED)
    if name == "copiste-dun-jour":  # generated, not downloaded: byte for byte the shared copy's splits
        for split in ("train", "val", "test"):
            assert (folder / f"{split}.txt").read_bytes() == (shared_real / name / f"{split}.txt").read_bytes()


def test_the_original_size_of_a_page_comes_from_its_alto_or_page_xml(tmp_path):
    alto, page = tmp_path / "a.xml", tmp_path / "p.xml"
    alto.write_bytes(XML)  # attributes over two lines, as eScriptorium writes them
    page.write_text('<PcGts><Page imageFilename="p.jpg" imageWidth="2550" imageHeight="3300"></Page></PcGts>')
    assert dl.page_size(alto) == (90, 60) and dl.page_size(page) == (2550, 3300)
    assert dl.page_size(tmp_path / "missing.xml") is None
    (tmp_path / "half.png").write_bytes(png(1275, 1650))
    assert dl.reduced_copy_problem(tmp_path / "half.png", (2550, 3300)) is None
    assert "no XML" in dl.reduced_copy_problem(tmp_path / "half.png", None)
