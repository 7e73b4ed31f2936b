"""Shared fixtures: small rendered line images that need no dataset files, and a temp cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from ocrbench.data.base import LineSample

torch.set_num_threads(min(2, os.cpu_count() or 1))

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
def rendered_lines():
    return RenderedLines()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Generated data goes to a per-session temp cache, never the user's ~/.cache."""
    monkeypatch.setenv("OCRBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
