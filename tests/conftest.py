"""Shared fixtures: small rendered line images that need no dataset files, and a temp cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from ocrbench.data.samples import LineSample

# one thread per pytest-xdist worker (the workers already share the cores), else up to two
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))

WORDS = ["the cat", "A dog ran", "hello, world", "42 ships", "Quick fox!", "rain (today)", "it's me", "Zebra;"]


def render_line(text: str, height: int = 32) -> np.ndarray:
    """A clean, ink-bright rendering of ``text`` with Pillow's built-in font (tests only)."""
    font = ImageFont.load_default(size=height * 3 // 4)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("L", (right + 8, height), 0)
    ImageDraw.Draw(image).text((4 - left, (height - (bottom - top)) // 2 - top), text, fill=255, font=font)
    return np.asarray(image)


class RenderedLines(torch.utils.data.Dataset):
    def __init__(self, texts=WORDS, height: int = 32):
        self.samples = [LineSample(render_line(t, height), t) for t in texts]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


@pytest.fixture
def one_thread():
    """Tiny models on one thread (``pytestmark = pytest.mark.usefixtures("one_thread")``): with two threads on a
    loaded 2-core machine their small ops slow down about tenfold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def importable_tmp(monkeypatch, tmp_path):
    """``tmp_path`` on sys.path (for a plugin package a test writes there); the modules imported from it are
    forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def rendered_lines():
    return RenderedLines()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Generated data goes to a per-session temp cache, never the user's ~/.cache."""
    monkeypatch.setenv("OCRBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


SHARED_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
MEMORIAL_PAGES = ("SC0033B_s4_b01_f14_i083", "SC0033B_s4_b01_f14_i084")  # two real pages (ALTO + JPG)


@pytest.fixture
def shared_real() -> Path:
    """The shared copies of the downloadable real collections (``<repo>/../shared/data/real``), or skip."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"shared real data not available ({SHARED_REAL})")
    return SHARED_REAL


@pytest.fixture
def shared_download(shared_real):
    """``fetch(name)`` installs dataset ``name`` from the shared mirror into the test cache (once per session:
    a dataset already there is kept) and returns its folder."""
    from ocrbench.data.download import download

    def fetch(name: str) -> Path:
        return Path(download(name, mirror=shared_real, progress=False)["path"])

    return fetch


@pytest.fixture
def memorial_pages(tmp_path, shared_real) -> Path:
    """Two real pages of stanford-memorials (the XML as published, the JPG a half-size copy) in a temp folder."""
    import shutil

    root = tmp_path / "alto"
    root.mkdir()
    for stem in MEMORIAL_PAGES:
        for suffix in (".xml", ".jpg"):
            shutil.copyfile(shared_real / "stanford-memorials" / f"{stem}{suffix}", root / f"{stem}{suffix}")
    return root


@pytest.fixture
def faulty_alto(memorial_pages):
    """Two real ALTO pages with two faults loading meets: a line box 1 px high (cannot be cropped) and
    a line with characters outside the IAM charset (€, ✓)."""
    import re

    root = memorial_pages
    xml = root / "SC0033B_s4_b01_f14_i083.xml"
    text = re.sub(r'VPOS="251"\s*WIDTH="1571"\s*HEIGHT="190">\s*<Shape><Polygon POINTS="[^"]*"',
                  'VPOS="422" WIDTH="1571" HEIGHT="1"><Shape><Polygon POINTS="310 422 1800 422 1800 423 310 423"',
                  xml.read_text(), count=1)
    xml.write_text(text.replace('CONTENT="of the Univ. of the"', 'CONTENT="of the Univ. € of the ✓"'))
    return root
