"""The page pipeline: image loading of any mode/size, reading order, crops, transcription, scoring, the
`ocrbench page` command, and the detector table. Untrained tiny models: the plumbing is under test here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ocrbench.cli import main
from ocrbench.config import DataConfig
from ocrbench.data.samples import PageSample
from ocrbench.datasets import create_dataset
from ocrbench.errors import DataError
from ocrbench.harness.checkpoint import model_meta
from ocrbench.models import create_model
from ocrbench.pipeline import (
    AP_SCORE_FLOOR,
    crop_lines,
    detect_lines,
    detect_lines_at,
    detector_cost,
    draw_boxes,
    evaluate_detector,
    evaluate_pages,
    load_image,
    page_sample_from_xml,
    reading_order,
    to_ink_bright,
    transcribe_page,
)
from ocrbench.report.detection import detector_leaderboard, detector_markdown

PAGE = 256



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small convolutions gain nothing from a second thread, and lose a lot when the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return create_model("yolo_lines_tiny", input_height=PAGE).eval(), create_model("crnn_tiny", input_height=32).eval()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    cfg = DataConfig(name="synth-pages", height=PAGE, test_size=3, cache_dir=str(tmp_path_factory.mktemp("pages")))
    return create_dataset("synth-pages", "test", cfg)


def scan(h=300, w=200) -> np.ndarray:
    """A fake scan: light paper, two dark strokes."""
    img = np.full((h, w), 230, np.uint8)
    img[50:70, 20:180] = 40
    img[120:140, 20:150] = 40
    return img


# ---- images -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "I;16", "CMYK"])
def test_load_image_any_mode(tmp_path, mode):
    gray = scan()
    im = Image.fromarray(gray)
    if mode == "I;16":
        im = Image.fromarray(gray.astype(np.uint16) * 256)
    elif mode != "L":
        im = im.convert(mode)
    path = tmp_path / ("page.tif" if mode in ("I;16", "CMYK") else "page.png")
    im.save(path)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == gray.shape
    assert out[60, 100] < 100 and out[10, 10] > 150  # ink dark, paper light, as scanned


def test_load_image_very_large_scan_is_reduced(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((6000, 4500), 220, np.uint8)).save(path, quality=50)
    out = load_image(path, max_side=2000)
    assert max(out.shape) == 2000 and abs(out.shape[1] / out.shape[0] - 0.75) < 0.01


def test_unreadable_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG this is not really a png")
    with pytest.raises(DataError, match="broken.png"):
        load_image(bad)
    with pytest.raises(DataError, match="nowhere.jpg"):
        load_image(tmp_path / "nowhere.jpg")


def test_to_ink_bright_inverts_scans_only():
    bright = to_ink_bright(scan())
    assert bright[60, 100] > 200 and bright[10, 10] < 20
    already = 255 - scan()
    assert np.array_equal(to_ink_bright(already), already)


# ---- ordering and crops -----------------------------------------------------------------------------------
def test_reading_order_top_to_bottom_then_left_to_right():
    boxes = np.array([[10, 100, 200, 120],  # third row
                      [10, 10, 200, 30],  # first row
                      [220, 52, 400, 70],  # second row, right
                      [10, 50, 200, 72]])  # second row, left
    assert reading_order(boxes) == [1, 3, 2, 0]
    assert reading_order(np.zeros((0, 4))) == []


def test_crop_lines_pads_and_clips():
    page = np.arange(100 * 80, dtype=np.uint8).reshape(100, 80)
    (crop, edge) = crop_lines(page, np.array([[10, 20, 50, 30], [70, 90, 90, 110]]), pad=0.1)
    assert crop.shape == (12, 42)  # 1 px of padding (0.1 x 10) each side
    assert edge.shape == (12, 12)  # 2 px of padding (0.1 x 20), clipped at the page's right and bottom (80, 100)


# ---- the pipeline -----------------------------------------------------------------------------------------
def test_transcribe_page_returns_boxes_in_page_pixels(models, pages):
    detector, recognizer = models
    big = np.asarray(Image.fromarray(pages[0].image).resize((pages[0].image.shape[1] * 3, PAGE * 3)))
    result = transcribe_page(big, detector, recognizer, ink="bright", score_threshold=0.0)
    assert (result.width, result.height) == (big.shape[1], big.shape[0])
    assert result.lines, "an untrained detector at threshold 0 still proposes boxes"
    boxes = result.boxes
    assert (boxes[:, 2] <= big.shape[1] + 1e-3).all() and (boxes[:, 3] <= big.shape[0] + 1e-3).all()
    assert boxes[:, 3].max() > PAGE  # scaled back to the big page
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    assert (np.diff(cy) > -0.5 * (boxes[:, 3] - boxes[:, 1]).max()).all()  # top to bottom
    json.dumps(result.as_dict())
    assert result.text.count("\n") == len(result.lines) - 1


def test_detect_lines_on_a_blank_page(models):
    boxes, scores = detect_lines(models[0], np.zeros((300, 200), np.uint8))
    assert boxes.shape[1] == 4 and len(boxes) == len(scores)


def test_evaluate_detector_and_pages(models, pages):
    detector, recognizer = models
    ev = evaluate_detector(detector, pages, batch_size=2, device="cpu")
    for key in ("ap50", "ap", "p50", "r50", "f1", "pages", "gt_lines", "eval_pages_per_s"):
        assert key in ev
    assert ev["pages"] == 3 and 0 <= ev["ap50"] <= 1
    scored = evaluate_pages([pages[0], pages[1]], detector, recognizer, device="cpu")
    assert scored["page_cer"] >= 0 and len(scored["per_page"]) == 2 and "ap50" in scored


def test_the_pipeline_runs_the_detector_once_per_page(models, pages):
    """evaluate_pages scores AP from low-score detections and transcribes at the operating threshold: one
    forward pass serves both, with the results of two separate passes."""
    detector, recognizer = models
    # a hook on the detector itself would also fire on a reused output: count a layer the network runs
    first_conv = next(m for m in detector.modules() if isinstance(m, torch.nn.Conv2d))
    forwards = []
    handle = first_conv.register_forward_hook(lambda *_: forwards.append(1))
    try:
        scored = evaluate_pages([pages[0], pages[1]], detector, recognizer, score_threshold=0.3, device="cpu")
        assert len(forwards) == 2
        both = detect_lines_at(detector, pages[2].image, (AP_SCORE_FLOOR, 0.3))
        assert len(forwards) == 3
    finally:
        handle.remove()
    assert "forward" not in vars(detector)  # the detector's own forward is back
    apart = [detect_lines(detector, pages[2].image, t) for t in (AP_SCORE_FLOOR, 0.3)]
    assert all(np.array_equal(a, b) for pair in zip(both, apart) for a, b in zip(*pair))
    for sample, entry in zip(pages, scored["per_page"]):
        alone = transcribe_page(sample.image, detector, recognizer, ink="bright", score_threshold=0.3)
        assert entry["lines"] == len(alone.lines) and entry["hyp"] == " ".join(alone.text.split("\n"))


def test_detector_cost_columns(models, pages):
    cost = detector_cost(models[0], pages, batch_size=2, device="cpu")
    assert cost.get("gflops_per_page", 0) > 0, cost
    assert cost.get("activation_memory_mib", 0) > 0, cost


def test_draw_boxes(pages):
    s = pages[0]
    im = draw_boxes(s.image, s.boxes[:2], s.boxes, texts=["a", "b"])
    assert im.size == (s.image.shape[1], s.image.shape[0]) and im.mode == "RGB"


# ---- real pages -------------------------------------------------------------------------------------------
def test_real_alto_pages_load_as_page_samples(memorial_pages):
    """Two real pages (conftest: the shared copy, half-size images; skipped without it)."""
    counts = []
    for xml in sorted(memorial_pages.glob("*.xml")):
        s = page_sample_from_xml(xml)
        h, w = s.image.shape
        assert isinstance(s, PageSample) and h > 1000 and w > 700
        assert np.median(s.image) < 60  # converted to ink bright
        assert (s.boxes[:, 2] <= w + 1).all() and (s.boxes[:, 3] <= h + 1).all()
        assert all(s.texts)
        counts.append(len(s.texts))
    assert counts == [15, 13]
    handwritten = page_sample_from_xml(sorted(memorial_pages.glob("*.xml"))[1], line_types=["Handwritten"])
    assert len(handwritten.texts) == 11  # two printed letterhead lines left out


# ---- the command ------------------------------------------------------------------------------------------
def _save(model, path: Path) -> Path:
    torch.save({"meta": model_meta(model), "model": model.state_dict()}, path)
    return path


def test_boxes_of_a_page_over_the_work_size_are_in_file_pixels(models, pages, tmp_path):
    """A file over WORK_SIDE is processed downscaled, but its boxes are reported in the file's own pixels."""
    from ocrbench.pipeline import WORK_SIDE, load_image

    detector, recognizer = models
    wide = np.tile(255 - pages[0].image, (1, -(-(WORK_SIDE + 400) // pages[0].image.shape[1])))
    path = tmp_path / "wide.png"
    Image.fromarray(wide).save(path)
    from_file = transcribe_page(path, detector, None, score_threshold=0.0)
    small = load_image(path)
    from_array = transcribe_page(small, detector, None, ink="dark", score_threshold=0.0)
    assert (from_file.width, from_file.height) == (wide.shape[1], wide.shape[0]) and max(small.shape) == WORK_SIDE
    assert len(from_file.lines) == len(from_array.lines) > 0
    scale = np.array([wide.shape[1] / small.shape[1], wide.shape[0] / small.shape[0]] * 2)
    assert np.allclose(from_file.boxes, from_array.boxes * scale, atol=0.2)


def test_page_command_json_and_errors(models, tmp_path, capsys):
    detector, recognizer = models
    det, rec = _save(detector, tmp_path / "det.pt"), _save(recognizer, tmp_path / "rec.pt")
    image = tmp_path / "scan.png"
    Image.fromarray(scan(400, 300)).convert("RGB").save(image)
    assert main(["page", str(image), "--detector", str(det), "--recognizer", str(rec), "--json",
                 "--score-threshold", "0", "--draw", str(tmp_path / "boxes.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["width"] == 300 and out["height"] == 400 and isinstance(out["text"], str)
    assert all(set(line) == {"box", "score", "text"} for line in out["lines"])
    assert (tmp_path / "boxes.png").exists()
    # detector and recognizer swapped: a clear error, exit status 2
    assert main(["page", str(image), "--detector", str(rec), "--recognizer", str(det)]) == 2
    assert "detection model is needed" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert main(["page", str(bad), "--detector", str(det), "--recognizer", str(rec)]) == 2
    assert "bad.jpg" in capsys.readouterr().err
    assert main(["page", str(image), "--detector", "yolo_lines", "--recognizer", str(rec),
                 "--runs", str(tmp_path / "no-runs")]) == 2
    assert "no trained yolo_lines checkpoint" in capsys.readouterr().err


def test_page_command_finds_named_checkpoints(models, tmp_path, capsys):
    detector, recognizer = models
    (tmp_path / "runs/quick/yolo_lines_tiny-abc").mkdir(parents=True)
    (tmp_path / "runs/quick/crnn_tiny-def").mkdir(parents=True)
    _save(detector, tmp_path / "runs/quick/yolo_lines_tiny-abc/checkpoint.pt")
    _save(recognizer, tmp_path / "runs/quick/crnn_tiny-def/checkpoint.pt")
    image = tmp_path / "scan.png"
    Image.fromarray(scan()).save(image)
    assert main(["page", str(image), "--detector", "yolo_lines_tiny", "--recognizer", "crnn_tiny",
                 "--runs", str(tmp_path / "runs"), "--json"]) == 0
    assert "yolo_lines_tiny-abc" in json.loads(capsys.readouterr().out)["detector"]


# ---- the detector table -----------------------------------------------------------------------------------
def test_detector_table_from_records():
    base = {"task": "detection", "status": "ok", "dataset": "synth-pages", "split": "test", "params": 465000,
            "p50": 0.9, "r50": 0.8, "f1": 0.85, "ap": 0.5, "eval_pages_per_s": 20.0, "precision": "fp32"}
    records = [{**base, "model": "yolo_lines", "ap50": 0.90}, {**base, "model": "yolo_lines", "ap50": 0.80},
               {**base, "model": "yolo_lines_tiny", "ap50": 0.95, "gflops_per_page": 0.06},
               {"model": "crnn", "status": "ok", "cer": 0.1, "dataset": "synth-lines", "split": "test"},
               {**base, "model": "broken", "status": "failed", "ap50": None}]
    table = detector_leaderboard(records)
    assert table["model"].tolist() == ["yolo_lines_tiny", "yolo_lines"]
    assert table.loc[1, "ap50"] == pytest.approx(0.85) and table.loc[1, "n_runs"] == 2  # the mean over seeds
    md = detector_markdown(records)
    assert "## Text-line detectors" in md and "| yolo_lines_tiny" in md and "AP@[.5:.95]" in md
    assert "n/a" in md  # yolo_lines has no FLOPs column value
    assert detector_markdown([records[3]]) == "" and detector_markdown([]) == ""
