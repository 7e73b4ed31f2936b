"""``ocrbench data download``: a tiny recipe served by a local HTTP server (success, resume, every fault, and a
rerun after each), the mirror path (reduced images accepted, tampered XML refused), the three real recipes from
the shared mirror (skipped without it) and ``--list``."""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from ocrbench.cli import main
from ocrbench.data import download as dl
from ocrbench.errors import DataError, UnknownNameError

NAME = "tiny-pages"
XML = b'<?xml version="1.0"?>\n<alto><Layout><Page WIDTH="90" HEIGHT="60"/></Layout></alto>\n'
TEXT = b"a text file that decides the lines\n" * 40


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 200).save(out, "PNG")
    return out.getvalue()


IMAGE = png(90, 60)
SOURCE = {"pages/page.xml": XML, "pages/page.png": IMAGE, "notes.txt": TEXT}


# ---- a local server ---------------------------------------------------------------------------------------
class Server:
    """Serves ``files`` on 127.0.0.1 with Range support; records every request's path and Range header; a path
    in ``cut`` is sent half and the connection closed (once)."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests, self.cut = dict(files), [], set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.lstrip("/")
                server.requests.append((path, self.headers.get("Range")))
                if path not in server.files:
                    self.send_error(404)
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


def recipe_dict(base_url: str) -> dict:
    files = [{"source": "pages/page.xml", "dest": "page.xml", "kind": "xml"},
             {"source": "pages/page.png", "dest": "page.png", "kind": "image", "width": 90, "height": 60},
             {"source": "notes.txt", "dest": "notes.txt", "kind": "text"}]
    for f in files:
        body = SOURCE[f["source"]]
        f.update(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    return {"name": NAME, "description": "two files and a picture", "license": "CC0", "citation": "the tests",
            "source": {"repository": "local", "commit": "0" * 40}, "base_url": base_url, "files": files}


@pytest.fixture
def recipe(server) -> dl.Recipe:
    return dl.Recipe.from_dict(recipe_dict(server.url), "test recipe")


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def fetch(recipe, cache, **kw) -> dict:
    return dl.download(recipe, cache_dir=cache, progress=False, **kw)


def assert_nothing_half_made(cache: Path) -> None:
    """No dataset folder, and nothing but the staging folder beside where it would be."""
    root = dl.datasets_root(cache)
    assert not (root / NAME).exists()
    assert {p.name for p in root.iterdir()} <= {dl.STAGING}


def assert_installed(cache: Path, image_source: str = dl.ORIGINAL) -> dict:
    folder = dl.dataset_dir(NAME, cache)
    assert (folder / "page.xml").read_bytes() == XML and (folder / "notes.txt").read_bytes() == TEXT
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["recipe"] == NAME and manifest["source"]["commit"] == "0" * 40
    assert manifest["image_source"] == image_source and set(manifest["files"]) == {"page.xml", "page.png",
                                                                                 "notes.txt"}
    assert not (dl.datasets_root(cache) / dl.STAGING).exists()  # the staging folder is gone once installed
    return manifest


# ---- from the network -------------------------------------------------------------------------------------
def test_download_verifies_and_installs_with_a_manifest(recipe, cache):
    out = fetch(recipe, cache)
    manifest = assert_installed(cache)
    assert (dl.dataset_dir(NAME, cache) / "page.png").read_bytes() == IMAGE and out["already"] is False
    assert all(f["verified"] == "sha256" for f in manifest["files"].values())
    assert manifest["version"] == dl.dataset_version(manifest["files"]) and len(manifest["version"]) == 12
    assert fetch(recipe, cache)["already"] is True  # a second call finds it installed


def test_a_cut_off_file_is_resumed_with_a_range_request(recipe, server, cache):
    server.cut.add("notes.txt")
    with pytest.raises(DataError, match="closed after"):
        fetch(recipe, cache)
    assert_nothing_half_made(cache)
    part = dl.datasets_root(cache) / dl.STAGING / NAME / ("notes.txt" + dl.PART_SUFFIX)
    assert part.stat().st_size == len(TEXT) // 2
    server.requests.clear()
    fetch(recipe, cache)
    assert ("notes.txt", f"bytes={len(TEXT) // 2}-") in server.requests
    assert ("pages/page.xml", None) not in server.requests  # finished files are not fetched again
    assert_installed(cache)


def test_a_part_file_that_is_already_whole_is_kept(recipe, server, cache):
    staged = dl.datasets_root(cache) / dl.STAGING / NAME
    staged.mkdir(parents=True)
    (staged / ("notes.txt" + dl.PART_SUFFIX)).write_bytes(TEXT)  # received in full, cut before its rename
    fetch(recipe, cache)
    assert ("notes.txt", f"bytes={len(TEXT)}-") in server.requests  # answered 416: nothing more to send
    assert_installed(cache)


def test_a_wrong_checksum_is_refused_and_the_file_dropped(recipe, server, cache):
    server.files["notes.txt"] = TEXT.replace(b"lines", b"LINES")
    with pytest.raises(DataError, match="sha256 .* does not match"):
        fetch(recipe, cache)
    assert_nothing_half_made(cache)
    assert not (dl.datasets_root(cache) / dl.STAGING / NAME / "notes.txt").exists()
    server.files["notes.txt"] = TEXT
    fetch(recipe, cache)
    assert_installed(cache)


def test_from_the_network_even_an_image_must_match_exactly(recipe, server, cache):
    server.files["pages/page.png"] = png(45, 30)  # a fine reduced copy, but not from a mirror
    with pytest.raises(DataError, match="page.png: sha256"):
        fetch(recipe, cache)
    assert_nothing_half_made(cache)


def test_http_404_is_one_line(recipe, server, cache):
    del server.files["pages/page.png"]
    with pytest.raises(DataError, match="HTTP 404") as err:
        fetch(recipe, cache)
    assert "\n" not in str(err.value) and "pages/page.png" in str(err.value)
    assert_nothing_half_made(cache)
    server.files["pages/page.png"] = IMAGE
    fetch(recipe, cache)
    assert_installed(cache)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_no_network_is_one_line_naming_the_mirror_option(recipe, cache):
    with pytest.raises(DataError, match="cannot download .*--from DIR") as err:
        fetch(recipe, cache, base_url=f"http://127.0.0.1:{closed_port()}")
    assert "\n" not in str(err.value)
    assert_nothing_half_made(cache)
    fetch(recipe, cache)  # the recipe's own server
    assert_installed(cache)


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
    monkeypatch.undo()
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
def make_mirror(tmp_path: Path, image: bytes = IMAGE, xml: bytes = XML) -> Path:
    folder = tmp_path / "mirror" / NAME
    folder.mkdir(parents=True)
    for name, body in (("page.xml", xml), ("page.png", image), ("notes.txt", TEXT)):
        (folder / name).write_bytes(body)
    return folder.parent


def test_a_mirror_may_hold_a_reduced_image_and_gets_the_same_version(recipe, cache, tmp_path, monkeypatch):
    full = fetch(recipe, tmp_path / "full")
    monkeypatch.setenv(dl.MIRROR_ENV, str(make_mirror(tmp_path, image=png(45, 30))))  # half size
    fetch(recipe, cache)
    manifest = assert_installed(cache, dl.REDUCED)
    image = manifest["files"]["page.png"]
    assert image["verified"].startswith("reduced copy") and image["original_sha256"] != image["sha256"]
    assert manifest["files"]["page.xml"]["verified"] == "sha256"
    assert manifest["version"] == full["version"]  # the version depends on the XML and text, never the pixels


@pytest.mark.parametrize("fault, match", [("xml", "page.xml: sha256 .*only images"),
                                          ("aspect", "page.png: .*not the original 90x60"),
                                          ("undecodable", "page.png: .*does not decode")])
def test_a_mirror_with_a_tampered_file_is_refused(recipe, cache, tmp_path, fault, match):
    mirror = make_mirror(tmp_path, xml=XML.replace(b"90", b"91") if fault == "xml" else XML,
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


# ---- recipes ----------------------------------------------------------------------------------------------
def test_recipes_are_found_by_a_scan_and_checked(tmp_path, monkeypatch):
    assert dl.list_recipes() == ["copiste-dun-jour", "iam-splits", "stanford-memorials"]
    with pytest.raises(UnknownNameError, match="Valid downloadable datasets: copiste-dun-jour, iam-splits"):
        dl.get_recipe("stanford")
    bad = recipe_dict("http://x")
    del bad["citation"]
    with pytest.raises(DataError, match="missing field.*citation"):
        dl.Recipe.from_dict(bad)
    with pytest.raises(DataError, match="unknown postprocess"):  # before anything is downloaded
        dl.postprocessor(dl.Recipe.from_dict({**recipe_dict("http://x"), "postprocess": "shuffle"}))
    escape = recipe_dict("http://x")
    escape["files"][0]["dest"] = "../outside.xml"
    with pytest.raises(DataError, match="inside the dataset folder"):
        dl.Recipe.from_dict(escape)


def test_an_entry_point_adds_recipes(monkeypatch):
    class EntryPoint:
        name = "plugin"

        def load(self):
            return {**recipe_dict("http://x"), "name": "plugin-pages"}

    monkeypatch.setattr(dl.metadata, "entry_points", lambda group: [EntryPoint()] if group == dl.ENTRY_POINT_GROUP
                        else [])
    dl._all_recipes.cache_clear()
    try:
        assert "plugin-pages" in dl.list_recipes() and "stanford-memorials" in dl.list_recipes()
    finally:
        monkeypatch.undo()
        dl._all_recipes.cache_clear()


def test_real_recipes_pin_a_commit_and_describe_every_file():
    for name in dl.list_recipes():
        r = dl.get_recipe(name)
        assert re.fullmatch(r"[0-9a-f]{40}", r.source["commit"]) and r.source["commit"] in r.base_url
        assert r.base_url.startswith("https://raw.githubusercontent.com/") and r.license and r.citation
        assert all(f.width and f.height for f in r.files if f.kind == "image")
    assert dl.get_recipe("copiste-dun-jour").postprocess == "document_splits"



# ---- the CLI ----------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_registry(tmp_path, server, monkeypatch):
    """The tiny recipe as the only packaged one (the scan of the recipes folder finds it)."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / f"{NAME}.json").write_text(json.dumps(recipe_dict(server.url)))
    monkeypatch.setattr(dl, "RECIPES_DIR", folder)
    dl._all_recipes.cache_clear()
    yield
    monkeypatch.undo()
    dl._all_recipes.cache_clear()


def test_cli_download_list_and_faults(tiny_registry, tmp_path, capsys):
    assert main(["data", "download", "--list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["datasets"][0] | {"path": ""} == {
        "name": NAME, "files": 3, "bytes": len(XML) + len(IMAGE) + len(TEXT), "license": "CC0", "downloaded": False,
        "image_source": None, "version": None, "path": ""}
    assert main(["data", "download", NAME, "--base-url", f"http://127.0.0.1:{closed_port()}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ocrbench: error: cannot download") and err.count("\n") == 1
    assert main(["data", "download", NAME, "--quiet"]) == 0
    assert "3 files verified" in capsys.readouterr().out
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
    assert {f.dest for f in recipe.files} <= set(manifest["files"])
    for f in recipe.files:
        entry = manifest["files"][f.dest]
        assert entry["verified"] == "sha256" if f.kind != "image" else entry["verified"] in (
            "sha256", "reduced copy: decodes, aspect ratio of the original")
        assert dl.sha256_of(folder / f.dest) == entry["sha256"]
        if f.kind != "image":
            assert entry["sha256"] == f.sha256
    assert manifest["image_source"] == (dl.ORIGINAL if name == "iam-splits" else dl.REDUCED)
    if name == "copiste-dun-jour":  # generated, not downloaded: byte for byte the shared copy's splits
        for split in ("train", "val", "test"):
            assert (folder / f"{split}.txt").read_bytes() == (shared_real / name / f"{split}.txt").read_bytes()
