"""The README's "Adding a model" works as written, both ways it offers: as one file dropped into
``ocrbench/models/`` (found by the package scan) and as a module of the user's own package, registered through
the entry-point group ``ocrbench.models``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path

import pytest
import torch

import ocrbench
from ocrbench._plugins import import_modules
from ocrbench.models import _registry as registry
from ocrbench.models import create_model, list_models, model_task

README = Path(__file__).parents[2] / "README.md"
HEADING = "## Adding a model"
HEIGHT = 32


def python_block_after(markdown: str, heading: str) -> str:
    """The first ```python block after the line ``heading``."""
    _, found, after = markdown.partition(f"\n{heading}\n")
    assert found, f"no heading {heading!r}"
    block = re.search(r"^```python\n(.*?)^```", after, re.DOTALL | re.MULTILINE)
    assert block, f"no ```python block after {heading!r}"
    return block.group(1)


def readme_snippet() -> str:
    """The model code of the README's "Adding a model" section, verbatim."""
    return python_block_after(README.read_text(), HEADING)


def write_package(root: Path, package: str, modules: dict[str, str]) -> None:
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    for name, code in modules.items():
        (root / package / f"{name}.py").write_text(code)


@pytest.fixture
def registry_sandbox(monkeypatch, importable_tmp):
    """A copy of the registry with the plugins not yet loaded, and a folder on sys.path."""
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    monkeypatch.setattr(registry, "_MODULES", dict(registry._MODULES))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    return importable_tmp


def fake_entry_points(monkeypatch, **plugins: str) -> list[str]:
    """Pretend installed distributions declare ``plugins`` (name -> "module") in group ocrbench.models;
    returns the list that records each read of that group."""
    reads = []

    def entry_points(**select):
        assert select == {"group": registry.ENTRY_POINT_GROUP}
        reads.append(select["group"])
        return metadata.EntryPoints(metadata.EntryPoint(name, value, select["group"])
                                    for name, value in plugins.items())

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    return reads


def smoke_test(model, dataset) -> None:
    """Forward shapes, a finite loss with gradients, and decoding to strings."""
    batch = model.collate([dataset[i] for i in range(3)])
    logits = model(batch.images, batch.widths)
    assert logits.shape[0] == 3 and logits.shape[2] == model.charset.num_classes
    assert int(model.output_lengths(batch.widths).max()) <= logits.shape[1]
    loss = model.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    hyps = model.eval().predict(batch.images, batch.widths)
    assert len(hyps) == 3 and all(isinstance(h, str) for h in hyps)


def test_readme_has_a_python_block_under_the_heading():
    code = python_block_after(README.read_text(), HEADING)
    assert "from ocrbench.models import register_model" in code and "@register_model" in code


def test_readme_model_as_a_plugin(registry_sandbox, monkeypatch, rendered_lines):
    write_package(registry_sandbox, "my_ocr_models", {"mynet": readme_snippet()})
    reads = fake_entry_points(monkeypatch, mynet="my_ocr_models.mynet")
    assert "my_ocr_models.mynet" not in sys.modules  # loaded lazily, on the first lookup

    assert {"mynet", "mynet_tiny", "crnn_tiny"} <= set(list_models())
    assert model_task("mynet_tiny") == "recognition" and "mynet" in list_models(task="recognition")
    model = create_model("mynet_tiny", input_height=HEIGHT)
    assert model.name == "mynet_tiny" and model.info.input_height == HEIGHT
    assert reads == [registry.ENTRY_POINT_GROUP]  # once per process, not once per lookup
    smoke_test(model, rendered_lines)


def test_broken_plugin_is_one_warning_not_a_crash(registry_sandbox, monkeypatch):
    write_package(registry_sandbox, "my_ocr_models", {
        "broken": "import a_dependency_that_is_not_installed\n",
        "fine": "from ocrbench.models import register_model\n\n"
                "@register_model\ndef fine_net(charset, **kwargs):\n    raise NotImplementedError\n"})
    fake_entry_points(monkeypatch, broken="my_ocr_models.broken", fine="my_ocr_models.fine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = list_models()
        list_models()
    plugin_warnings = [str(w.message) for w in caught if "model plugin" in str(w.message)]
    assert len(plugin_warnings) == 1, plugin_warnings  # one, however many lookups
    message = plugin_warnings[0]
    assert "'broken'" in message and "my_ocr_models.broken" in message and "a_dependency_that_is_not_installed" in message
    assert "fine_net" in names and "crnn" in names


def test_a_name_registered_twice_is_an_error(registry_sandbox, monkeypatch):
    write_package(registry_sandbox, "my_ocr_models", {
        "clash": "from ocrbench.models import register_model\n\n"
                 "@register_model\ndef crnn(charset, **kwargs):\n    raise NotImplementedError\n"})
    fake_entry_points(monkeypatch, clash="my_ocr_models.clash")
    with pytest.raises(registry.DuplicateModelError, match=r"'crnn' of my_ocr_models.clash .*ocrbench.models.crnn"):
        list_models()
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(registry._ENTRIES["line_cnn"])


def test_scan_imports_every_public_module(registry_sandbox):
    write_package(registry_sandbox, "scanned", {
        "alpha": "from ocrbench.models import register_model\n\n"
                 "@register_model\ndef scanned_alpha(charset, **kwargs):\n    raise NotImplementedError\n",
        "_helper": "raise AssertionError('modules whose name starts with _ are not imported')\n"})
    write_package(registry_sandbox / "scanned", "family", {})
    import scanned

    assert import_modules("scanned", scanned.__path__) == ["alpha", "family"]
    assert "scanned_alpha" in registry._ENTRIES and "scanned.family" in sys.modules


def test_readme_model_dropped_into_a_copy_of_the_package(tmp_path):
    """The original failure: a model file that imports ``register_model`` from ``ocrbench.models``. Run in a
    fresh interpreter on a copy of the package, importing the new module first (the order that used to fail)."""
    package = Path(ocrbench.__file__).parent
    shutil.copytree(package, tmp_path / "ocrbench", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "ocrbench" / "models" / "mynet.py").write_text(readme_snippet())
    check = ("import ocrbench, ocrbench.models.mynet\n"
             f"assert ocrbench.__file__.startswith({str(tmp_path)!r}), ocrbench.__file__\n"
             "from ocrbench.models import create_model, list_models\n"
             "assert {'mynet', 'mynet_tiny', 'crnn'} <= set(list_models()), list_models()\n"
             "create_model('mynet_tiny', input_height=32)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
