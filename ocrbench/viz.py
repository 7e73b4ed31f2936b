"""Feature-map visualisation: what each convolutional stage of a recognizer responds to on one line.

Forward hooks capture the output of every stage in ``model.stages`` (the convention of the reference
models), or of every ``Conv2d`` when a model has no ``stages``. Each map is shown as the mean over channels
plus the ``channels`` most active single channels, under the input line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


def feature_maps(model: nn.Module, image: torch.Tensor, width: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """(name, (C, H, W) activation) for each stage, for one image of shape (1, 1, H, W)."""
    named = _stage_modules(model)
    captured: list[tuple[str, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=name: captured.append((n, out[0].detach().float())))
             for name, m in named]
    try:
        with torch.no_grad():
            model.eval()
            model(image, width)
    finally:
        for h in hooks:
            h.remove()
    return [(n, t) for n, t in captured if t.ndim == 3]


def _stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    stages = getattr(model, "stages", None)
    if isinstance(stages, nn.ModuleList) and len(stages):
        return [(f"stages.{i}", m) for i, m in enumerate(stages)]
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


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
