"""The registry contract every text-line detector must pass. New detectors are picked up automatically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ocrbench.config import DataConfig
from ocrbench.data.samples import PageBatch, PageSample
from ocrbench.datasets import create_dataset
from ocrbench.harness.metrics import detection_metrics
from ocrbench.models import create_model, list_models, model_task
from ocrbench.models._detection import Detector

DETECTORS = list_models(task="detection")
TINY = [n for n in DETECTORS if n.endswith("_tiny")]
PAGE = 256  # page size (long side) for the tests
OVERFIT_STEPS = 300  # the gate: a tiny detector must find the lines of 2 pages (AP@0.5 >= OVERFIT_AP) in this many steps
# Not 1.0: a 256-px page draws a one-word line 9 px high, whose box a tiny model places at IoU ~0.4 (measured on
# the Austen pages: 19 of 20 lines at IoU >= 0.66, AP@0.5 0.93 by step 200 on an AVX-512 EPYC, 0.899 at step 300
# on an AVX2 one: float kernels differ by CPU); a broken detector scores far below.
OVERFIT_AP = 0.85



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small convolutions gain nothing from a second thread, and lose a lot when the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    # letter-like pages (10-16 lines): what a 256-px page can show legibly
    cfg = DataConfig(name="synth-pages", height=PAGE, train_size=4, cache_dir=str(tmp_path_factory.mktemp("pages")),
                     options={"pitch": [0.06, 0.09]})
    ds = create_dataset("synth-pages", "train", cfg)
    return [ds[i] for i in range(4)]


def test_there_are_detectors_and_each_family_has_a_tiny_variant():
    assert DETECTORS, "no detector registered"
    families = [n for n in DETECTORS if not n.endswith("_tiny")]
    missing = [n for n in families if f"{n}_tiny" not in DETECTORS]
    assert not missing, f"add a *_tiny variant for the contract tests: {missing}"


@pytest.mark.parametrize("name", DETECTORS)
def test_contract_collate_loss_and_predict(name, pages):
    torch.manual_seed(0)
    model = create_model(name, input_height=PAGE)
    assert isinstance(model, Detector) and model.task == "detection" == model_task(name)
    assert model.name == name and model.info.input_height == PAGE and model.info.decoder == "detector"
    batch = model.collate(pages[:3])
    assert isinstance(batch, PageBatch) and len(batch) == 3
    assert batch.images.dtype == torch.float32 and batch.images.shape[:2] == (3, 1)
    assert batch.images.shape[2] % model.info.min_width == 0 and batch.images.shape[3] % model.info.min_width == 0
    assert 0.0 <= float(batch.images.min()) and float(batch.images.max()) <= 1.0
    assert [len(b) for b in batch.boxes] == [len(p.texts) for p in pages[:3]]
    assert batch.to("cpu").images.shape == batch.images.shape
    loss = model.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    preds = model.predict(batch.images, batch.sizes, score_threshold=0.0)
    assert len(preds) == 3
    for (boxes, scores), (h, w) in zip(preds, batch.sizes.tolist()):
        assert boxes.ndim == 2 and boxes.shape[1] == 4 and scores.shape == (boxes.shape[0],)
        assert len(boxes) <= model.max_detections
        assert ((scores >= 0) & (scores <= 1)).all() and (scores[:-1] >= scores[1:]).all()
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()


@pytest.mark.parametrize("name", DETECTORS)
def test_collate_scales_pages_and_boxes_to_the_model_size(name):
    model = create_model(name, input_height=PAGE)
    image = np.zeros((2 * PAGE, PAGE), dtype=np.uint8)  # a page twice the model's size
    image[100:140, 50:400] = 200
    sample = PageSample(image, np.array([[50, 100, 400, 140]], dtype=np.float32), ["a line"])
    batch = model.collate([sample])
    assert tuple(batch.sizes[0].tolist()) == (PAGE, PAGE // 2) and float(batch.scales[0]) == 0.5
    np.testing.assert_allclose(batch.boxes[0].numpy(), [[25, 50, 200, 70]])


@pytest.mark.parametrize("name", DETECTORS)
def test_empty_page_and_page_without_lines(name):
    model = create_model(name, input_height=PAGE)
    blank = PageSample(np.zeros((PAGE, 180), dtype=np.uint8), np.zeros((0, 4), np.float32), [])
    batch = model.collate([blank, blank])
    loss = model.loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    assert all(len(b) == len(s) for b, s in model.predict(batch.images, batch.sizes))


@pytest.mark.parametrize("name", TINY)
def test_grad_checkpointing_gives_the_same_gradients(name, pages):
    torch.manual_seed(0)
    model = create_model(name, input_height=PAGE)
    batch = model.collate(pages[:2])
    grads = []
    for enable in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enable)
        model.loss(batch).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", TINY)
def test_overfits_one_batch(name, pages):
    torch.manual_seed(0)
    model = create_model(name, input_height=PAGE)
    batch = model.collate(pages[:2])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, OVERFIT_STEPS)  # settles instead of oscillating
    for step in range(1, OVERFIT_STEPS + 1):
        model.train()
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
        if step % 25 == 0:
            model.eval()
            preds = [(b.numpy(), s.numpy()) for b, s in model.predict(batch.images, batch.sizes)]
            m = detection_metrics(preds, [b.numpy() for b in batch.boxes], model.score_threshold)
            if m["ap50"] >= OVERFIT_AP:
                return
    pytest.fail(f"{name} did not overfit 2 pages in {OVERFIT_STEPS} steps: {m}, loss {loss.item():.3f}")


# ---- yolo_lines internals ---------------------------------------------------------------------------------
def test_yolo_assignment_band_ignore_and_lonely_boxes():
    from ocrbench.models.yolo_lines import assign

    ys, xs = torch.meshgrid(torch.arange(8) * 8 + 4.0, torch.arange(16) * 8 + 4.0, indexing="ij")
    centres = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)  # an 8 x 16 grid of stride 8
    gt = torch.tensor([[10.0, 8.0, 110.0, 40.0],  # a line 32 px high: centre row band
                       [60.0, 50.0, 63.0, 53.0]])  # a speck between cell centres
    pos, gt_idx, ignore = assign(gt, centres)
    rows = centres[pos, 1]
    line = gt_idx == 0
    assert set(rows[line].tolist()) == {20.0, 28.0}  # |y - 24| <= max(32/4, 4)
    assert centres[pos[line], 0].min() >= 10 and centres[pos[line], 0].max() <= 110
    assert (gt_idx == 1).sum() == 1  # the speck still gets its nearest cell
    assert ignore.reshape(8, 16)[1, 3] and not ignore.reshape(8, 16)[2, 3]  # in the box, off the band: ignored
    empty = assign(torch.zeros(0, 4), centres)
    assert empty[0].numel() == 0 and not empty[2].any()


def test_yolo_contained_fragments_are_suppressed_and_merging_averages():
    from ocrbench.models.yolo_lines import merge_boxes, suppress_contained

    boxes = torch.tensor([[0.0, 0, 100, 20], [10, 2, 50, 18], [0, 30, 100, 50]])  # line, its fragment, next line
    assert suppress_contained(boxes).tolist() == [True, False, True]
    merged = merge_boxes(boxes[:1], torch.tensor([[0.0, 0, 100, 20], [4, 0, 104, 20]]), torch.tensor([1.0, 1.0]), 0.6)
    torch.testing.assert_close(merged, torch.tensor([[2.0, 0, 102, 20]]))


def test_yolo_predicts_float_boxes_under_autocast(pages):
    model = create_model("yolo_lines_tiny", input_height=PAGE).eval()
    batch = model.collate(pages[:2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        preds = model.predict(batch.images, batch.sizes, score_threshold=0.0)
        loss = model.train().loss(batch)
    assert all(b.dtype == torch.float32 and s.dtype == torch.float32 for b, s in preds)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize("name", TINY)
def test_detector_contract_declared_on_the_base(name, pages):
    """The harness calls on a detector what it calls on a recognizer: collate, flops_passes, profile_predict,
    feature_stages/forward_features (no probing)."""
    from ocrbench.harness.train import _collate_fn
    from ocrbench.profile import count_flops, model_flops_passes

    model = create_model(name, input_height=PAGE).eval()
    assert model.task == "detection" and model_task(name) == "detection"
    batch = _collate_fn(model)([pages[0]])
    assert isinstance(batch, PageBatch)
    passes = model_flops_passes(model, batch.images, None, 0)
    assert count_flops(*passes["train"]).macs == count_flops(*passes["infer"]).macs > 0
    assert len(model.profile_predict(batch.images, None, 0)) == 1
    stages = model.feature_stages()
    seen = []
    hooks = [m.register_forward_hook(lambda *_a, n=n: seen.append(n)) for n, m in stages]
    with torch.no_grad():
        model.forward_features(batch.images)
    for h in hooks:
        h.remove()
    assert seen == [n for n, _ in stages]
