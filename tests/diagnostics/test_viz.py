import pytest
import torch

from ocrbench.diagnostics.viz import feature_maps, plot_feature_maps
from ocrbench.models import create_model, list_models

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("name", ["line_cnn_tiny", "resnet_ctc_tiny", "crnn_tiny"])
def test_one_map_per_stage_and_a_png(name, rendered_lines, tmp_path):
    assert name in list_models()
    model = create_model(name, input_height=32)
    batch = model.collate([rendered_lines[0]])
    maps = feature_maps(model, batch.images, batch.widths)
    assert [n for n, _ in maps] == [f"stages.{i}" for i in range(len(model.stages))]
    assert all(t.ndim == 3 and torch.isfinite(t).all() for _, t in maps)
    path = plot_feature_maps(batch.images, maps, tmp_path / "fm.png")
    assert path.stat().st_size > 1000


def test_top_activation_plot_and_strip(rendered_lines, tmp_path):
    from ocrbench.diagnostics.features import FeatureHistory, top_activations, trace_peaks
    from ocrbench.diagnostics.viz import plot_feature_strip, plot_top_activations

    torch.manual_seed(0)
    model = create_model("crnn_tiny", input_height=32).eval()
    traced = trace_peaks(model, rendered_lines, "stages.2", 0, top_activations(model, rendered_lines, "stages.2", 0, 3))
    assert plot_top_activations(traced, tmp_path / "top.png").stat().st_size > 5000
    batch = model.collate(list(rendered_lines)[:2])
    maps = [torch.randn(2, 16, 8, batch.images.shape[3] // 4).half() for _ in range(3)]
    history = FeatureHistory("stages.1", "crnn_tiny", batch.texts, batch.images, batch.widths, [0, 5, 10], maps)
    assert plot_feature_strip(history, tmp_path / "strip.png", channel=2).stat().st_size > 5000
    with pytest.raises(Exception, match="choose --channel 0..15"):
        plot_feature_strip(history, tmp_path / "bad.png", channel=16)


def test_viz_command_traces_a_channel_and_draws_a_history(tmp_path, capsys):
    import json

    from ocrbench.cli import main

    tiny = ["--set", "data.test_size=8", "--set", "data.options={max_chars: 8}"]
    out = tmp_path / "top.png"
    code = main(["viz", "--model", "crnn_tiny", "--trace", "stages.3", "--channel", "2", "--top-k", "3",
                 "--lines", "6", "--out", str(out), *tiny, "--json"])
    reply = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out.stat().st_size > 5000 and len(reply["peaks"]) == 3
    assert reply["peaks"][0]["activation"] >= reply["peaks"][-1]["activation"]
    assert main(["viz", "--history", str(tmp_path / "missing.pt")]) != 0
