"""The image convention (ink bright on dark) and the one conversion of scans to it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ocrbench.data.images import read_gray, scan_to_ink, to_ink_bright
from ocrbench.errors import DataError, UserError


def scan() -> np.ndarray:
    page = np.full((20, 50), 200, np.uint8)  # light paper
    page[8:12, 10:40] = 40  # dark ink
    return page


def test_scan_to_ink_puts_paper_at_zero_and_ink_at_255():
    ink = scan_to_ink(scan())
    assert ink[0, 0] == 0 and ink[10, 20] == 255


def test_to_ink_bright_converts_scans_only_and_names_the_valid_modes():
    assert np.array_equal(to_ink_bright(scan()), scan_to_ink(scan()))  # auto: mostly light, so a scan
    assert np.array_equal(to_ink_bright(scan(), "dark"), scan_to_ink(scan()))
    bright = 255 - scan()
    assert np.array_equal(to_ink_bright(bright), bright) and np.array_equal(to_ink_bright(scan(), "bright"), scan())
    with pytest.raises(UserError, match="auto, dark or bright"):
        to_ink_bright(scan(), "light")


def test_read_gray_names_a_bad_file(tmp_path):
    png = tmp_path / "line.png"
    Image.fromarray(np.zeros((16, 64, 3), np.uint8)).save(png)
    assert read_gray(png).shape == (16, 64)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(png.read_bytes()[:-30])
    with pytest.raises(DataError, match="truncated.png"):
        read_gray(truncated)
    with pytest.raises(DataError, match="not found"):
        read_gray(tmp_path / "missing.png")


def test_iam_and_the_page_pipeline_use_the_one_conversion():
    import ocrbench.datasets.iam as iam
    import ocrbench.datasets.xml_pages.lines as xml_lines
    import ocrbench.pipeline as pipeline

    assert iam.scan_to_ink is xml_lines.scan_to_ink is scan_to_ink and pipeline.to_ink_bright is to_ink_bright
