"""``yolo_lines``: a single-stage, grid-based text-line detector in the YOLO family (Redmon et al. 2016), anchor-free.

Layout: a small convolutional backbone (a 4x4 patchify stem, then strides 8 to 32 with SiLU residual blocks),
an FPN-style top-down neck merged at stride 8, a *horizontal context* stage, and a dense head that predicts, for every cell of the
stride-8 grid, an objectness logit and the distances from the cell centre to the four sides of its line's
box (left, top, right, bottom), as in FCOS (Tian et al. 2019) and YOLOX/YOLOv8's anchor-free heads.

Why anchor-free: handwritten lines run from a 2:1 single word to 30:1 and more, and their width depends on
the text, not on a typical object shape. Anchor boxes would need many aspect ratios and scales to give every
line an anchor with a useful IoU, and a thin line has a low IoU with any anchor a few pixels off vertically,
which makes IoU-based anchor matching brittle. Predicting side distances places no prior on the shape.

Why horizontal context: a cell in the middle of a 400-pixel line must know where the line ends, 25 cells
away; a small backbone does not see that far. Residual depthwise ``1 x 5`` convolutions with dilations 1, 2,
4, 8, 16 along x give the stride-8 grid a horizontal receptive field of 125 cells (1000 px) for a tenth of
the network's cost; a ``3 x 1`` one adds a little vertical context (which line is above, which below).

Assignment: a cell is positive for a line when its centre lies inside the box horizontally and within a band
around the box's vertical centre (half-height ``max(h/4, stride/2)``); of several candidate lines, the one
whose centre is closest vertically (in units of its height) wins. The other cells inside a box are ignored
by the objectness loss (neither positive nor negative); every line gets at least its nearest cell.

Losses: complete-IoU loss on positive cells (``torchvision.ops.complete_box_iou_loss``, Zheng et al. 2020)
and binary cross-entropy on objectness with an IoU-aware target (YOLOv5's objectness target: the IoU of the
cell's current box with its line, floored), so scores rank well-placed boxes first, which is what AP rewards.
Inference: score threshold, ``torchvision.ops.batched_nms`` (one NMS over the whole batch, images as
categories), weighted box fusion (each kept box becomes the score-weighted mean of the candidates overlapping
it: +4 points of AP@[.5:.95] on synth-pages for free), then suppression of boxes mostly inside a better box
(a fragment of a line has a low IoU with the whole line, but lies inside it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, box_iou, complete_box_iou_loss

from ..data.charset import Charset
from ._base import ModelInfo
from ._blocks import conv_bn_act, run_stages
from ._detection import Detector, PageBatch
from ._registry import register_model

STRIDE = 8  # prediction grid
PAD_MULTIPLE = 32  # deepest backbone stride: padded pages must divide by it


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN-SiLU with an identity shortcut; the last BN starts at zero (block = identity)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = conv_bn_act(c, c, 3, act=nn.SiLU)
        self.conv2 = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        nn.init.zeros_(self.conv2[1].weight)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.conv1(x)))


class AxialContext(nn.Module):
    """Residual depthwise conv along one axis (``kernel`` taps, ``dilation`` apart), then a pointwise mix."""

    def __init__(self, c: int, kernel: tuple[int, int], dilation: tuple[int, int]):
        super().__init__()
        padding = tuple((k - 1) // 2 * d for k, d in zip(kernel, dilation))
        self.dw = nn.Conv2d(c, c, kernel, padding=padding, dilation=dilation, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        nn.init.zeros_(self.bn2.weight)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.bn2(self.pw(self.act(self.bn1(self.dw(x))))))


class YoloLines(Detector):
    """Anchor-free single-stage line detector; see the module docstring.

    Args:
        input_height: page size (long side, pixels) the model works at; pages are scaled to it.
        channels: widths of the patchify stem (stride 4) and of the stages at strides 8, 16, 32.
        neck: width of the neck, context and head at stride 8.
        dilations: horizontal dilations of the context stage.
        iou_floor: lowest objectness target of a positive cell.
        merge_iou: after NMS, average the boxes overlapping a kept box by this IoU (None: plain NMS).
    """

    def __init__(self, charset: Charset, input_height: int = 384, channels=(24, 48, 64, 96), neck: int = 48,
                 dilations=(1, 2, 4, 8, 16), iou_floor: float = 0.3, merge_iou: float | None = 0.6):
        info = ModelInfo(input_height=input_height, output_stride=STRIDE, min_width=PAD_MULTIPLE,
                         decoder="detector")
        super().__init__(charset, info)
        self.iou_floor = iou_floor
        self.merge_iou = merge_iou
        c0, *cs = channels
        # A 4x4 patchify stem (as ConvNeXt): lines are coarse objects, and full-resolution layers would cost
        # most of a CPU budget.
        stages, c_in = [nn.Sequential(nn.Conv2d(1, c0, 4, stride=4, bias=False), nn.BatchNorm2d(c0),
                                      nn.SiLU())], c0
        for c in cs:
            stages.append(nn.Sequential(conv_bn_act(c_in, c, 3, stride=2, act=nn.SiLU), ResidualBlock(c)))
            c_in = c
        self.stages = nn.ModuleList(stages)  # outputs at strides 4, 8, 16, 32
        self.lateral = nn.ModuleList([nn.Conv2d(c, neck, 1) for c in cs])  # strides 8, 16, 32
        self.merge = nn.ModuleList([conv_bn_act(neck, neck, 3, act=nn.SiLU) for _ in cs[:-1]])
        self.context = nn.Sequential(
            *[AxialContext(neck, (1, 5), (1, d)) for d in dilations], AxialContext(neck, (3, 1), (1, 1)))
        self.head = nn.Sequential(conv_bn_act(neck, neck, 3, act=nn.SiLU), nn.Conv2d(neck, 5, 1))
        # Start with few confident cells (prior 1%) and boxes 4 cells wide, 1.5 cells high around each cell.
        nn.init.normal_(self.head[-1].weight, std=0.01)
        nn.init.constant_(self.head[-1].bias, 0.0)
        with torch.no_grad():
            self.head[-1].bias[0] = -math.log(99)
            self.head[-1].bias[1:].copy_(torch.tensor([math.log(4), math.log(0.75), math.log(4), math.log(0.75)]))

    # ---- network ----------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) pages, H and W multiples of 32 → (B, 5, H/8, W/8): objectness logit, log-distances."""
        x = _standardize(images)
        feats = []
        for i, stage in enumerate(self.stages):
            x = run_stages([stage], x, self.grad_checkpointing)
            if i >= 1:
                feats.append(x)
        lat = [conv(f) for conv, f in zip(self.lateral, feats)]
        y = lat[-1]
        for k in range(len(lat) - 2, -1, -1):  # top-down: stride 32 → 16 → 8
            y = self.merge[k](lat[k] + F.interpolate(y, size=lat[k].shape[-2:], mode="nearest"))
        y = run_stages(list(self.context), y, self.grad_checkpointing)
        return self.head(y)

    def _decode(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Head output → objectness logits (B, HW), boxes (B, HW, 4) in input pixels, cell centres (HW, 2)."""
        out = out.float()  # box arithmetic and losses in fp32 under autocast
        b, _, h, w = out.shape
        ys = (torch.arange(h, device=out.device, dtype=torch.float32) + 0.5) * STRIDE
        xs = (torch.arange(w, device=out.device, dtype=torch.float32) + 0.5) * STRIDE
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=1)
        flat = out.reshape(b, 5, h * w).transpose(1, 2)  # (B, HW, 5)
        dist = flat[..., 1:].clamp(max=10.0).exp() * STRIDE  # left, top, right, bottom
        boxes = torch.cat([centres - dist[..., :2], centres + dist[..., 2:]], dim=-1)
        return flat[..., 0], boxes, centres

    # ---- training ---------------------------------------------------------------------------------------
    def loss(self, batch: PageBatch) -> torch.Tensor:
        logits, boxes, centres = self._decode(self(batch.images))
        obj_target = torch.zeros_like(logits)
        obj_weight = torch.ones_like(logits)
        box_losses = []
        for i, gt in enumerate(batch.boxes):
            pos, gt_idx, ignore = assign(gt.float(), centres)
            obj_weight[i, ignore] = 0.0
            if pos.numel() == 0:
                continue
            pred, target = boxes[i, pos], gt[gt_idx].float()
            box_losses.append(complete_box_iou_loss(pred, target, reduction="none"))
            with torch.no_grad():
                iou = box_iou(pred, target).diagonal()
            obj_target[i, pos] = iou.clamp(min=self.iou_floor, max=1.0)
        # Cells of the padding are not part of any page: keep them out of the objectness loss.
        obj_weight *= _valid_cells(batch.sizes, centres).to(obj_weight.dtype)
        obj = F.binary_cross_entropy_with_logits(logits, obj_target, weight=obj_weight, reduction="sum")
        obj = obj / obj_weight.sum().clamp(min=1.0)
        box = torch.cat(box_losses).mean() if box_losses else logits.sum() * 0.0
        return obj * 4.0 + box

    # ---- inference --------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images: torch.Tensor, sizes: torch.Tensor | None = None,
                score_threshold: float | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        threshold = self.score_threshold if score_threshold is None else score_threshold
        logits, boxes, centres = self._decode(self(images))
        scores = logits.sigmoid()
        b = images.shape[0]
        if sizes is None:
            sizes = torch.tensor([images.shape[-2:]] * b, device=images.device)
        valid = _valid_cells(sizes.to(images.device), centres)
        cand_boxes, cand_scores, cand_img = [], [], []
        for i in range(b):
            keep = ((scores[i] >= threshold) & valid[i]).nonzero().squeeze(1)
            if keep.numel() > 4000:  # pre-NMS cap: the best cells only
                keep = keep[scores[i, keep].topk(4000).indices]
            cand_boxes.append(_clip(boxes[i, keep], sizes[i]))
            cand_scores.append(scores[i, keep])
            cand_img.append(torch.full_like(keep, i))
        all_boxes, all_scores, all_img = torch.cat(cand_boxes), torch.cat(cand_scores), torch.cat(cand_img)
        kept = batched_nms(all_boxes, all_scores, all_img, self.nms_iou)  # sorted by score
        results = []
        for i in range(b):
            k = kept[all_img[kept] == i]
            bx, sc = all_boxes[k], all_scores[k]
            if self.merge_iou is not None and len(k):
                mine = all_img == i
                bx = _clip(merge_boxes(bx, all_boxes[mine], all_scores[mine], self.merge_iou), sizes[i])
            inside = suppress_contained(bx)
            results.append((bx[inside][: self.max_detections], sc[inside][: self.max_detections]))
        return results


def _clip(boxes: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Boxes clipped to a page of ``size`` (height, width)."""
    h, w = (float(v) for v in size)
    return torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h), boxes[:, 2].clamp(0, w),
                        boxes[:, 3].clamp(0, h)], dim=1)


def _standardize(images: torch.Tensor) -> torch.Tensor:
    """Per-page zero mean, unit variance: scans and synthetic pages differ in paper level and contrast."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    std = images.std(dim=(1, 2, 3), keepdim=True)
    return (images - mean) / (std + 1e-3)


def _valid_cells(sizes: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(B, HW) True for cells whose centre lies on the page (not in the batch padding)."""
    h, w = sizes[:, :1].to(centres.dtype), sizes[:, 1:].to(centres.dtype)
    return (centres[None, :, 0] < w) & (centres[None, :, 1] < h)


def assign(gt: torch.Tensor, centres: torch.Tensor, stride: int = STRIDE
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cells responsible for each line box.

    Returns ``(pos, gt_idx, ignore)``: indices of positive cells, the box index of each, and a (HW,) mask of
    cells inside some box that are not positive (left out of the objectness loss).
    """
    n = gt.shape[0]
    hw = centres.shape[0]
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long, device=centres.device)
        return empty, empty, torch.zeros(hw, dtype=torch.bool, device=centres.device)
    px, py = centres[:, :1], centres[:, 1:]  # (HW, 1)
    x0, y0, x1, y1 = gt.T  # (N,)
    h = (y1 - y0).clamp(min=1.0)
    cy = (y0 + y1) / 2
    inside_x = (px >= x0) & (px <= x1)
    in_box = inside_x & (py >= y0) & (py <= y1)
    offset = (py - cy).abs()
    band = offset <= torch.maximum(0.25 * h, torch.full_like(h, stride / 2))
    cost = torch.where(inside_x & band, offset / h, torch.full_like(offset, math.inf))
    best, gt_idx = cost.min(dim=1)
    is_pos = torch.isfinite(best)
    # every box gets at least the cell nearest its centre (very short or very thin boxes)
    cx = (x0 + x1) / 2
    nearest = ((centres[None, :, 0] - cx[:, None]).abs() + (centres[None, :, 1] - cy[:, None]).abs()).argmin(dim=1)
    has_cell = torch.zeros(n, dtype=torch.bool, device=gt.device)
    has_cell[gt_idx[is_pos]] = True
    lonely = (~has_cell).nonzero().squeeze(1)
    is_pos[nearest[lonely]] = True
    gt_idx[nearest[lonely]] = lonely
    pos = is_pos.nonzero().squeeze(1)
    ignore = in_box.any(dim=1) & ~is_pos
    return pos, gt_idx[pos], ignore


def merge_boxes(kept: torch.Tensor, candidates: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Weighted box fusion after NMS: each kept box becomes the score-weighted mean of the candidate boxes
    overlapping it by ``iou`` or more. Every cell along a line predicts the whole line; averaging their
    boxes cancels part of each cell's error at the line's far ends."""
    overlap = box_iou(kept, candidates) >= iou  # (K, C); each kept box overlaps itself
    weights = overlap.to(scores.dtype) * scores[None, :] ** 2
    # a broadcast sum, not a matmul: autocast would run a matmul in half precision (pixel-sized errors)
    return (weights[:, :, None] * candidates[None]).sum(dim=1) / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)


def suppress_contained(boxes: torch.Tensor, fraction: float = 0.7) -> torch.Tensor:
    """Mask keeping boxes (sorted best first) unless ``fraction`` of their area lies inside a better box."""
    n = boxes.shape[0]
    if n < 2:
        return torch.ones(n, dtype=torch.bool, device=boxes.device)
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)  # (N, N)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=1)
    inside = inter / area[None, :].clamp(min=1e-6) > fraction  # [i, j]: j lies inside i
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    for j in range(1, n):
        better = inside[:j, j] & keep[:j]
        if better.any():
            keep[j] = False
    return keep


@register_model(task="detection")
def yolo_lines(charset: Charset, **kwargs) -> YoloLines:
    """Anchor-free YOLO-style line detector: 0.47 M parameters, 0.55 GFLOPs per 384-px page."""
    return YoloLines(charset, **kwargs)


@register_model(task="detection")
def yolo_lines_tiny(charset: Charset, **kwargs) -> YoloLines:
    """Tiny variant for tests."""
    return YoloLines(charset, **{"channels": (8, 16, 24, 32), "neck": 16, **kwargs})
