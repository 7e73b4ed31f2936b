"""File and image checks, the integrity summary of a result row, `ocrbench data check` / `data info`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocrbench.cli import main
from ocrbench.data import integrity
from ocrbench.datasets import run_check
from ocrbench.errors import UnknownNameError


@pytest.fixture
def png(tmp_path) -> Path:
    path = tmp_path / "ok.png"
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (16, 1))).save(path)
    return path


def test_check_known_file(png):
    data = png.read_bytes()
    assert integrity.check_known_file(png, len(data), hashlib.sha256(data).hexdigest(),
                                      hashlib.md5(data).hexdigest()) is None
    assert "size" in integrity.check_known_file(png, len(data) + 1)
    assert "sha256" in integrity.check_known_file(png, sha256="0" * 64)
    assert "md5" in integrity.check_known_file(png, md5="0" * 32)
    assert integrity.check_known_file(png.with_name("gone.png")) == "missing"


def test_check_image_decodes_pixels(png, tmp_path):
    assert integrity.check_image(png) is None
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(png.read_bytes()[:-30])
    assert "unreadable" in integrity.check_image(truncated)
    (tmp_path / "empty.png").write_bytes(b"")
    assert integrity.check_image(tmp_path / "empty.png") == "empty file"


def test_integrity_summary_of_a_dataset_without_files():
    assert integrity.integrity_summary(object()) == {"bad_files": 0, "bad_examples": [], "oov_replaced": {}}


def test_run_check_names(tmp_path):
    with pytest.raises(UnknownNameError, match="Did you mean: iam"):
        run_check("iamm", tmp_path)
    assert "generated" in run_check("synth-lines", None).notes[0]
    report = run_check("alto", None)
    assert not report.ok and "--root" in report.hint
    report = run_check(f"alto:{tmp_path}", None)  # kind:PATH sets the root
    assert not report.ok and str(tmp_path) in report.problems[0]


def test_cli_check_and_info(tmp_path, capsys):
    assert main(["data", "check", "pagexml", "--root", str(tmp_path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and "no PAGE XML" in out["problems"][0] and out["hint"]
    assert main(["data", "info", "emnist-lines", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["needs_root"] and "62" in info["charset"] and "test_size" in info["sizes"]
    assert main(["list", "datasets", "--json"]) == 0
    names = {d["name"] for d in json.loads(capsys.readouterr().out)["datasets"]}
    assert {"iam", "emnist", "emnist-lines", "alto", "pagexml"} <= names
