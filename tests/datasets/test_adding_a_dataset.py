"""The README's "Adding a dataset" works as written, both ways it offers: as one file dropped into
``ocrbench/datasets/`` (found by the package scan) and as a module of the user's own package, registered through
the entry-point group ``ocrbench.datasets``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ocrbench
import ocrbench.datasets as datasets
from ocrbench.config import DataConfig
from ocrbench.data import registry
from ocrbench.models import create_model

README = Path(__file__).parents[2] / "README.md"
BEGIN, END = "<!-- adding-a-dataset -->", "<!-- /adding-a-dataset -->"
HEIGHT = 32
LINES = {"test": ["a line", "another"], "train": ["one more"]}


def readme_snippet() -> str:
    """The dataset module of the README's "Adding a dataset" section, verbatim (the python block between the
    markers)."""
    text = README.read_text()
    if BEGIN not in text or END not in text:
        pytest.fail(f"README.md has no {BEGIN} ... {END} block (the 'Adding a dataset' section)")
    block = re.search(r"^```python\n(.*?)^```", text.split(BEGIN, 1)[1].split(END, 1)[0], re.DOTALL | re.MULTILINE)
    assert block, f"no ```python block between {BEGIN} and {END}"
    return block.group(1)


def write_lines(root: Path) -> Path:
    """A folder per split of dark-on-light 'scans' and their transcriptions, as the snippet expects."""
    for split, texts in LINES.items():
        (root / split).mkdir(parents=True)
        for i, text in enumerate(texts):
            scan = np.full((40, 120), 230, np.uint8)
            scan[15:25, 10:10 + 20 * (i + 1)] = 20
            Image.fromarray(scan).save(root / split / f"{i:03d}.png")
            (root / split / f"{i:03d}.txt").write_text(text + "\n", encoding="utf-8")
    return root


@pytest.fixture
def registry_sandbox(monkeypatch, importable_tmp):
    """Copies of the dataset tables with the plugins not yet loaded, and a folder on sys.path."""
    for table in ("_FACTORIES", "_INFOS", "_CHECKS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    monkeypatch.setattr(datasets, "_plugins_loaded", False)
    return importable_tmp


def test_readme_dataset_as_a_plugin(registry_sandbox, monkeypatch):
    (registry_sandbox / "my_ocr_data").mkdir()
    (registry_sandbox / "my_ocr_data" / "__init__.py").write_text("")
    (registry_sandbox / "my_ocr_data" / "my_lines.py").write_text(readme_snippet())
    reads = []

    def entry_points(**select):
        reads.append(select["group"])
        plugins = [("my_lines", "my_ocr_data.my_lines")] if select["group"] == datasets.ENTRY_POINT_GROUP else []
        return metadata.EntryPoints([metadata.EntryPoint(*plugin, select["group"]) for plugin in plugins])

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    assert "my-lines" in datasets.list_datasets() and "synth-lines" in datasets.list_datasets()
    assert datasets.dataset_info("my-lines").needs_root
    root = write_lines(registry_sandbox / "lines")
    test = datasets.create_dataset(f"my-lines:{root}", "test", DataConfig(height=HEIGHT))
    assert len(test) == 2 and test[0].text == "a line" and test[0].image.shape[0] == HEIGHT
    assert test[0].image.max() > 200 > test[0].image[0, 0]  # ink bright on a dark background
    batch = create_model("crnn_tiny", input_height=HEIGHT).collate([test[0], test[1]])
    assert batch.images.shape[:3] == (2, 1, HEIGHT) and batch.texts == LINES["test"]
    assert reads.count(datasets.ENTRY_POINT_GROUP) == 1  # once per process, not once per lookup


def test_readme_dataset_dropped_into_a_copy_of_the_package(tmp_path):
    """One file in ocrbench/datasets/ and nothing else edited: the scan finds it, in a fresh interpreter."""
    package = Path(ocrbench.__file__).parent
    shutil.copytree(package, tmp_path / "ocrbench", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "ocrbench" / "datasets" / "my_lines.py").write_text(readme_snippet())
    root = write_lines(tmp_path / "lines")
    check = ("import ocrbench\n"
             f"assert ocrbench.__file__.startswith({str(tmp_path)!r}), ocrbench.__file__\n"
             "from ocrbench.datasets import create_dataset, list_datasets\n"
             "assert 'my-lines' in list_datasets()\n"
             f"lines = create_dataset('my-lines:{root}', 'train')\n"
             "assert len(lines) == 1 and lines[0].text == 'one more'\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_the_readme_dataset_names_its_missing_folder(registry_sandbox, monkeypatch):
    (registry_sandbox / "my_ocr_data").mkdir()
    (registry_sandbox / "my_ocr_data" / "__init__.py").write_text("")
    (registry_sandbox / "my_ocr_data" / "my_lines.py").write_text(readme_snippet())
    monkeypatch.setattr(metadata, "entry_points", lambda **select: metadata.EntryPoints(
        [metadata.EntryPoint("my_lines", "my_ocr_data.my_lines", select["group"])]
        if select["group"] == datasets.ENTRY_POINT_GROUP else []))
    with pytest.raises(ocrbench.errors.UserError, match="my-lines:PATH"):
        datasets.create_dataset("my-lines", "test")
    with pytest.raises(ocrbench.errors.DataError, match="no line images"):
        datasets.create_dataset(f"my-lines:{registry_sandbox}", "test")
