"""Every registered model family exports to ONNX and onnxruntime reproduces PyTorch (tiny variants, CPU)."""

import pytest
import torch

from ocrbench.deploy.export import example_lines, export_onnx, model_kind
from ocrbench.deploy.runtime import OnnxGraphs, OnnxRecognizer, logits_parity
from ocrbench.models import create_model, list_models

pytestmark = pytest.mark.usefixtures("one_thread")
RECOGNIZERS = list_models("*_tiny", task="recognition")
DETECTORS = list_models("*_tiny", task="detection")


def test_every_family_is_covered():
    assert {"crnn_tiny", "attention_lm_tiny", "cnn_transformer_tiny"} <= set(RECOGNIZERS) and DETECTORS


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (model, OnnxGraphs), exported once per module."""
    folder, found = tmp_path_factory.mktemp("onnx"), {}

    def get(name):
        if name not in found:
            torch.manual_seed(0)
            kwargs = {} if name in DETECTORS else {"input_height": 32}
            model = create_model(name, **kwargs).eval()
            found[name] = model, OnnxGraphs(export_onnx(model, folder))
        return found[name]

    return get


@pytest.mark.parametrize("name", RECOGNIZERS)
def test_recognizer_parity_on_a_padded_batch_of_new_sizes(name, exported):
    model, graphs = exported(name)
    onnx = OnnxRecognizer(model, graphs)
    # batch size and widths other than the export's examples: the dynamic axes must really be dynamic
    images, widths = example_lines(model, 4, 57, shrink=21)
    errors = logits_parity(model, onnx, images, widths, steps=12)
    assert errors["max_abs_error"] < 1e-4, errors
    with torch.no_grad():
        assert onnx.predict(images, widths) == model.predict(images, widths)


@pytest.mark.parametrize("name", [n for n in RECOGNIZERS if model_kind(create_model(n)) == "seq2seq"])
def test_autoregressive_profile_predict_decodes_the_whole_line(name, exported):
    model, graphs = exported(name)
    images, widths = example_lines(model, 1, 30)
    tokens = OnnxRecognizer(model, graphs).profile_predict(images, widths, 17)
    assert len(tokens) == 1 and model.profile_predict(images, widths, 17).shape == (1, 18)


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_grid_parity(name, exported):
    model, graphs = exported(name)
    pages = torch.rand(3, 1, 5 * model.info.min_width, 2 * model.info.min_width)
    assert logits_parity(model, graphs, pages)["max_abs_error"] < 1e-4


def test_a_model_outside_the_known_families_says_why():
    with pytest.raises(NotImplementedError, match="neither a CTC nor an autoregressive"):
        model_kind(torch.nn.Linear(2, 2))


def test_only_greedy_decoding_runs_in_onnxruntime(exported):
    model, graphs = exported("crnn_tiny")
    with pytest.raises(NotImplementedError, match="greedily"):
        OnnxRecognizer(model, graphs).check_decoder("beam")
