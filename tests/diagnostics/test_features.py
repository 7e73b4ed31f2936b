"""Feature-map tracing: receptive-field arithmetic of every reference model, top activations, the recorder."""

import pytest
import torch

from ocrbench.config import TrainConfig
from ocrbench.diagnostics.features import (
    FeatureHistory,
    FeatureMapRecorder,
    layer_output,
    receptive_field,
    receptive_field_arithmetic,
    top_activations,
    trace_peaks,
    valid_columns,
)
from ocrbench.errors import UnknownNameError, UserError
from ocrbench.harness.train import train
from ocrbench.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")


C3, P2 = (3, 1), (2, 2)  # a 3x3 conv with stride 1, a 2x2 max-pool
# (model, layer, [(kernel, stride) along the width]) read off each model's source;
# a residual block's field is its main branch's (conv3 with the block's stride, then conv3)
REFERENCE_FIELDS = [
    ("crnn_tiny", "stages.4", [C3, P2, C3, P2, C3, P2, C3, C3]),  # 5 conv blocks, pools after 3
    ("line_cnn_tiny", "stages.1", [(5, 1), P2, C3, P2]),  # LeNet: conv5-pool-conv3-pool
    # stem conv3/2, then blocks of stride (1,1), (2,2), (2,1), (2,1): width strides 1, 2, 1, 1
    ("resnet_ctc_tiny", "stages.4", [(3, 2), C3, C3, (3, 2), C3, C3, C3, C3, C3]),
    # ResNetLineEncoder.CPU_STRIDES (2,2), (2,2), (2,1), (2,1) after the stride-2 stem
    ("attention_lm_tiny", "cnn.stages.4", [(3, 2), (3, 2), C3, (3, 2), C3, C3, C3, C3, C3]),
    ("cnn_transformer_tiny", "cnn.stages.4", [(3, 2), (3, 2), C3, (3, 2), C3, C3, C3, C3, C3]),
]


def blank(width=256, height=32):
    return torch.zeros(1, 1, height, width), torch.tensor([width])


def test_arithmetic_of_a_chain():
    assert receptive_field_arithmetic([]) == (1, 1)
    assert receptive_field_arithmetic([C3, P2]) == (4, 2)
    assert receptive_field_arithmetic([C3, P2, C3, P2, C3, P2, C3, C3]) == (54, 8)


@pytest.mark.parametrize("name,layer,width_chain", REFERENCE_FIELDS)
def test_measured_field_matches_the_arithmetic(name, layer, width_chain):
    torch.manual_seed(0)
    model = create_model(name, input_height=32).eval()
    images, widths = blank()
    fmap = layer_output(model, layer, images, widths)
    size, jump = receptive_field_arithmetic(width_chain)
    x = fmap.shape[3] // 2  # an interior unit: its field is not cut by the border
    box = receptive_field(model, layer, images, widths, 0, x)
    assert box.width == size
    neighbour = receptive_field(model, layer, images, widths, 0, x + 1)
    assert neighbour.left - box.left == jump  # the field moves by the layer's stride in input pixels
    assert receptive_field(model, layer, images, widths, 0, 0).left == 0  # cut at the border


def test_field_height_is_cut_by_the_line_and_follows_the_row():
    model = create_model("line_cnn_tiny", input_height=32).eval()
    images, widths = blank()
    size, jump = receptive_field_arithmetic([(5, 1), P2, C3, P2])  # 12 px, 4 px apart
    rows = [receptive_field(model, "stages.1", images, widths, y, 20) for y in (0, 3, 7)]
    assert (rows[0].top, rows[0].bottom) == (0, 8)  # centred on row 1.5, cut at the top edge
    assert rows[1].height == size and rows[1].top == 3 * jump - 4
    assert rows[2].bottom == 32


@pytest.fixture
def crnn():
    torch.manual_seed(0)
    return create_model("crnn_tiny", input_height=32).eval()


def test_top_activations_are_the_largest_maxima_over_ink(crnn, rendered_lines):
    peaks = top_activations(crnn, rendered_lines, "stages.2", 3, k=3, batch_size=3)
    assert len(peaks) == 3 and [p.value for p in peaks] == sorted((p.value for p in peaks), reverse=True)
    collate = crnn.collate
    maxima = []
    for i in range(len(rendered_lines)):  # each line alone: same maps over its ink as in a padded batch
        batch = collate([rendered_lines[i]])
        with torch.no_grad():
            fmap = layer_output(crnn, "stages.2", batch.images, batch.widths)[0, 3]
        cols = int(valid_columns(fmap.shape[1], batch.images.shape[3], batch.widths)[0])
        maxima.append(float(fmap[:, :cols].max()))
    expected = sorted(range(len(maxima)), key=lambda i: -maxima[i])[:3]
    assert [p.index for p in peaks] == expected
    assert [p.value for p in peaks] == pytest.approx([maxima[i] for i in expected], rel=1e-4)
    assert peaks[0].text == rendered_lines[peaks[0].index].text


def test_effective_field_lies_inside_the_theoretical_one(crnn, rendered_lines):
    peaks = top_activations(crnn, rendered_lines, "stages.3", 1, k=2)
    for t in trace_peaks(crnn, rendered_lines, "stages.3", 1, peaks):
        b = t.box
        assert t.gradient.shape == t.image.shape and t.gradient[b.top:b.bottom, b.left:b.right].sum() > 0
        outside = t.gradient.copy()
        outside[b.top:b.bottom, b.left:b.right] = 0
        assert outside.max() == 0


def test_clear_errors_for_wrong_layer_or_channel(crnn, rendered_lines):
    with pytest.raises(UnknownNameError, match="stages.2"):
        top_activations(crnn, rendered_lines, "stage.2", 0)
    with pytest.raises(UserError, match="choose --channel 0..15"):
        top_activations(crnn, rendered_lines, "stages.2", 16)
    images, widths = blank()
    with pytest.raises(UserError, match="feature map"):
        layer_output(crnn, "head", images, widths)  # runs, but outputs (B, T, classes)
    with pytest.raises(UserError, match="feature map"):
        layer_output(crnn, "rnn", images, widths)  # an LSTM's output is a tuple


def test_recorder_snapshots_without_changing_the_run(rendered_lines, tmp_path):
    cfg = TrainConfig(steps=4, batch_size=4, device="cpu", checkpoint_every=100, lr=3e-3)
    weights = []
    for callbacks in ([], [FeatureMapRecorder([rendered_lines[0], rendered_lines[5]], "stages.1", 2,
                                              tmp_path / "history.pt")]):
        torch.manual_seed(0)
        model = create_model("crnn_tiny", input_height=32)
        train(model, rendered_lines, cfg, tmp_path / f"run{len(callbacks)}", progress=False, callbacks=callbacks)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # eval mode, no grad, no RNG
    history = FeatureHistory.load(tmp_path / "history.pt")
    assert history.steps == [0, 2, 4] and history.layer == "stages.1" and history.model == "crnn_tiny"
    assert history.texts == [rendered_lines[0].text, rendered_lines[5].text]
    assert history.maps[0].shape[:2] == (2, 16) and history.maps[0].dtype == torch.float16
    assert not torch.equal(history.maps[0], history.maps[-1])  # training changed the maps


def test_recorder_rejects_an_unknown_layer_before_training(rendered_lines, tmp_path):
    model = create_model("crnn_tiny", input_height=32)
    cfg = TrainConfig(steps=2, batch_size=4, device="cpu")
    with pytest.raises(UnknownNameError):
        train(model, rendered_lines, cfg, tmp_path, progress=False,
              callbacks=[FeatureMapRecorder([rendered_lines[0]], "nope", 1, tmp_path / "h.pt")])
    with pytest.raises(UserError, match="no feature history"):
        FeatureHistory.load(tmp_path / "h.pt")
