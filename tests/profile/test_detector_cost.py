"""The detector's cost row measures memory in the precision it is trained in."""

from __future__ import annotations

import pytest
import torch

from ocrbench.config import DataConfig
from ocrbench.datasets import create_dataset
from ocrbench.models import create_model
from ocrbench.pipeline import detector_cost

PAGE = 128


@pytest.fixture(scope="module")
def detector_and_pages(tmp_path_factory):
    torch.manual_seed(0)
    cache = str(tmp_path_factory.mktemp("pages"))
    cfg = DataConfig(name="synth-pages", height=PAGE, test_size=2, cache_dir=cache)
    pages = create_dataset("synth-pages", "test", cfg)
    return create_model("yolo_lines_tiny", input_height=PAGE).eval(), pages


def test_memory_is_measured_and_stamped_with_the_training_precision(detector_and_pages, monkeypatch):
    import ocrbench.pipeline.cost as pipeline  # the module whose autocast detector_cost calls

    model, pages = detector_and_pages
    used = []
    real = pipeline.autocast
    monkeypatch.setattr(pipeline, "autocast", lambda dev, p: used.append(p) or real(dev, p))
    cost = detector_cost(model, pages, batch_size=2, device="cpu")
    assert cost["memory_precision"] == "fp32" and cost["activation_memory_mib"] > 0 and used == ["fp32"]
    # bf16 is a CUDA path: on a CPU the memory measurement is refused (as training is), not the whole row
    cost = detector_cost(model, pages, batch_size=2, device="cpu", precision="bf16")
    assert "CUDA" in cost["memory_error"] and cost["gflops_per_page"] > 0 and used[-1] == "bf16"
