import pytest
import torch

from ocrbench.models import create_model, list_models
from ocrbench.runtime import make_collator
from ocrbench.viz import feature_maps, plot_feature_maps

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("name", ["line_cnn_tiny", "resnet_ctc_tiny", "crnn_tiny"])
def test_one_map_per_stage_and_a_png(name, rendered_lines, tmp_path):
    assert name in list_models()
    model = create_model(name, input_height=32)
    batch = make_collator(model, model.charset, 32)([rendered_lines[0]])
    maps = feature_maps(model, batch.images, batch.widths)
    assert [n for n, _ in maps] == [f"stages.{i}" for i in range(len(model.stages))]
    assert all(t.ndim == 3 and torch.isfinite(t).all() for _, t in maps)
    path = plot_feature_maps(batch.images, maps, tmp_path / "fm.png")
    assert path.stat().st_size > 1000
