"""Detection metrics on hand-made box sets whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocrbench.harness.metrics import (
    COCO_IOUS,
    DetectionCounts,
    average_precision,
    box_iou,
    detection_metrics,
    match_detections,
)

GT = np.array([[10, 10, 110, 30], [10, 50, 210, 70], [10, 90, 160, 110]], dtype=np.float32)


def shifted(box, dx):
    return np.asarray(box, dtype=np.float32) + np.array([dx, 0, dx, 0], dtype=np.float32)


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 10]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0, 0.5]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_perfect_detections():
    m = detection_metrics([(GT, [0.9, 0.8, 0.7])], [GT])
    assert m["ap50"] == pytest.approx(1.0) and m["ap"] == pytest.approx(1.0)
    assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)


def test_shifted_detection_counts_only_at_low_iou_thresholds():
    # 100-px-wide box shifted right by 25 px: IoU = 75 / 125 = 0.6 → true at 0.50, 0.55, 0.60 only.
    pred = shifted(GT[0], 25)[None]
    assert box_iou(pred, GT[:1])[0, 0] == pytest.approx(0.6)
    m = detection_metrics([(pred, [0.9])], [GT[:1]])
    assert m["ap50"] == pytest.approx(1.0)
    assert m["ap"] == pytest.approx(0.3)
    counts = DetectionCounts().update(pred, [0.9], GT[:1])
    assert counts.prf(0.5) == (1.0, 1.0, 1.0)
    assert counts.prf(0.75) == (0.0, 0.0, 0.0)


def test_shift_beyond_half_is_a_miss_and_a_false_positive():
    pred = shifted(GT[0], 40)[None]  # IoU 60 / 140 = 0.43
    m = detection_metrics([(pred, [0.9])], [GT[:1]])
    assert m["ap50"] == 0.0 and (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


def test_missed_line():
    # 2 of 3 lines found, both right: precision 1, recall 2/3; AP = recall points 0..0.66 (67 of 101) at 1.0
    m = detection_metrics([(GT[:2], [0.9, 0.8])], [GT])
    assert m["precision"] == 1.0 and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(0.8)
    assert m["ap50"] == pytest.approx(67 / 101)


def test_duplicate_detection_is_a_false_positive():
    preds = np.concatenate([GT[:1], GT[:1] + 1])  # the same line twice
    tp = match_detections(preds, [0.9, 0.8], GT[:1])
    assert tp.tolist() == [True, False]
    m = detection_metrics([(preds, [0.9, 0.8])], [GT[:1]])
    assert m["ap50"] == pytest.approx(1.0)  # the duplicate ranks after the hit: recall 1 reached at precision 1
    assert (m["precision"], m["recall"]) == (0.5, 1.0) and m["f1"] == pytest.approx(2 / 3)


def test_false_positive_ranked_first_halves_ap():
    preds = np.array([[300, 300, 400, 320], *GT[:1]])
    m = detection_metrics([(preds, [0.95, 0.5])], [GT[:1]])
    assert m["ap50"] == pytest.approx(0.5)


def test_matching_is_greedy_by_score_not_by_iou():
    # The better-placed box scores lower: the higher-scoring one takes the line, the better one is a duplicate.
    preds = np.stack([shifted(GT[0], 20), GT[0]])
    assert match_detections(preds, [0.9, 0.5], GT[:1]).tolist() == [True, False]


def test_detections_pool_across_pages_and_score_threshold():
    counts = DetectionCounts()
    counts.update(GT, [0.9, 0.8, 0.1], GT)  # page 1: all right, one with a low score
    counts.update(np.array([[0, 0, 5, 5]]), [0.95], GT[:1])  # page 2: a confident false positive, a miss
    assert counts.n_gt == 4 and counts.pages == 2
    assert counts.prf(0.5, score_threshold=0.5) == pytest.approx((2 / 3, 2 / 4, 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)))
    # pooled ranking: fp(0.95), tp(0.9), tp(0.8), tp(0.1); recall 3/4 at best; precision envelope 0.75
    expected = np.mean([0.75 if r <= 0.75 + 1e-12 else 0.0 for r in np.linspace(0, 1, 101)])
    assert counts.ap(0.5) == pytest.approx(expected)


def test_empty_cases():
    assert math.isnan(average_precision([], [], 0))
    assert average_precision([], [], 3) == 0.0
    m = detection_metrics([(np.zeros((0, 4)), [])], [GT])
    assert m["ap50"] == 0.0 and (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    m = detection_metrics([(np.zeros((0, 4)), [])], [np.zeros((0, 4))])
    assert (m["precision"], m["recall"]) == (1.0, 1.0) and math.isnan(m["ap50"])


def test_coco_thresholds():
    assert COCO_IOUS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
