"""Feature-map visualisation: what each convolutional stage of a recognizer responds to on one line.

Forward hooks capture the output of every module of ``model.feature_stages()`` (the model contract: the
``stages`` of the reference models, else every ``Conv2d``) while ``model.forward_features`` runs; a model
without such stages shows n/a. Each map is shown as the mean over channels
plus the ``channels`` most active single channels, under the input line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UserError


def feature_maps(model: nn.Module, image: torch.Tensor, width: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """(name, (C, H, W) activation) for each stage, for one image of shape (1, 1, H, W)."""
    try:
        named = model.feature_stages()
    except NotImplementedError as e:
        raise UserError(f"feature maps: n/a ({e})") from None
    captured: list[tuple[str, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=name: captured.append((n, out[0].detach().float())))
             for name, m in named]
    try:
        with torch.no_grad():
            model.eval()
            model.forward_features(image, width)
    finally:
        for h in hooks:
            h.remove()
    return [(n, t) for n, t in captured if t.ndim == 3]


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, 1), np.percentile(x, 99)
    return np.clip((x - lo) / (hi - lo + 1e-8), 0, 1)


def plot_feature_maps(image: torch.Tensor, maps: list[tuple[str, torch.Tensor]], path: str | Path,
                      channels: int = 3, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 + len(maps) * (1 + channels)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 0.9 * rows + 0.6), squeeze=False)
    panels = [("input", image[0, 0].cpu().numpy())]
    for name, fmap in maps:
        top = fmap.abs().mean(dim=(1, 2)).argsort(descending=True)[:channels]
        panels.append((f"{name}: mean of {fmap.shape[0]} channels", fmap.mean(0).cpu().numpy()))
        panels += [(f"{name}: channel {int(c)}", fmap[c].cpu().numpy()) for c in top]
    for ax, (label, data) in zip(axes[:, 0], panels):
        ax.imshow(_normalise(data), cmap="magma", aspect="auto", interpolation="nearest")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "feature maps")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # leave room for the title
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    fig.clf()
    _pyplot().close(fig)
    return path


def plot_top_activations(traced, path: str | Path, title: str = "", margin: float = 1.0) -> Path:
    """One row per traced peak (a :class:`~ocrbench.diagnostics.features.TracedPeak`), strongest first: the
    crop of its line around the receptive field (``margin`` line heights either side), the theoretical
    receptive field as a cyan box, and the effective field (input-gradient magnitude) in red over it."""
    from matplotlib.patches import Rectangle

    plt = _pyplot()
    crops = [_crop_around(t, margin) for t in traced]
    widest = max(c[1] - c[0] for c in crops)
    fig, axes = plt.subplots(len(traced), 1, figsize=(min(14, max(7, 2 + widest / 22)), 1.05 * len(traced) + 0.9),
                             squeeze=False)
    for ax, t, (left, right) in zip(axes[:, 0], traced, crops):
        h = t.image.shape[0]
        ax.imshow(t.image[:, left:right], cmap="gray", vmin=0, vmax=1, extent=(left, right, h, 0),
                  interpolation="nearest")
        grad = t.gradient[:, left:right] / (t.gradient.max() + 1e-12)
        overlay = np.zeros((*grad.shape, 4))
        overlay[..., 0], overlay[..., 3] = 1.0, np.clip(grad * 1.5, 0, 0.75)  # red, opaque where the unit looks
        ax.imshow(overlay, extent=(left, right, h, 0), interpolation="nearest")
        b = t.box
        ax.add_patch(Rectangle((b.left, b.top), b.width, b.height, fill=False, edgecolor="cyan", linewidth=1.5,
                               clip_on=False))  # a field reaching the border stays visible
        ax.set_xlim(left, right)
        ax.set_ylim(h, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"#{t.peak.index}  activation {t.peak.value:.3g}  field {b.width}x{b.height} px  "
                     f"{t.peak.text!r}", fontsize=8, loc="left")
    fig.suptitle(title or "top activations", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _crop_around(traced, margin: float) -> tuple[int, int]:
    h, w = traced.image.shape
    pad = int(margin * h)
    return max(0, traced.box.left - pad), min(w, max(traced.box.right + pad, traced.box.left + 1))


def plot_feature_strip(history, path: str | Path, channel: int | None = None, lines: int = 3) -> Path:
    """How a layer's maps develop: the fixed lines in the top row, then one row per recorded step (the map
    of ``channel``, or the mean over channels), one column per line (at most ``lines``). Each map is scaled
    to its own 1st-99th percentile, so the pattern is visible whatever the activation scale."""
    plt = _pyplot()
    n = min(lines, len(history.texts))
    channels = history.maps[0].shape[1]
    if channel is not None and not 0 <= channel < channels:
        raise UserError(f"layer {history.layer!r} has {channels} channels: choose --channel 0..{channels - 1}")
    fig, axes = plt.subplots(1 + len(history.steps), n, figsize=(4.2 * n, 0.62 * (1 + len(history.steps)) + 0.8),
                             squeeze=False)
    for j in range(n):
        width = int(history.widths[j])
        axes[0, j].imshow(history.images[j, 0, :, :width].numpy(), cmap="gray", aspect="auto", vmin=0, vmax=1)
        axes[0, j].set_title(repr(history.texts[j]), fontsize=8)
        for i, (step, fmap) in enumerate(zip(history.steps, history.maps), 1):
            data = fmap[j].float()
            data = (data[channel] if channel is not None else data.mean(0)).numpy()
            cols = max(1, int(np.ceil(width * data.shape[1] / history.images.shape[3])))
            axes[i, j].imshow(_normalise(data[:, :cols]), cmap="magma", aspect="auto", interpolation="nearest")
            if j == 0:
                axes[i, j].set_ylabel(f"step {step}", rotation=0, ha="right", va="center", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    what = f"channel {channel}" if channel is not None else f"mean of {channels} channels"
    fig.suptitle(f"{history.model} {history.layer}: {what} during training", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
