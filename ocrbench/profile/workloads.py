"""What the profiler runs: a model, a synthetic batch of fixed shape, an inference call and a loss.

Recognizers come from the model registry and are fed synthetic lines of one fixed shape (height × width, all
lines full width, labels of a plausible length). Inference is the model's ``profile_predict(images, widths,
target_length)`` (the model contract: ``predict`` with greedy decoding, except that autoregressive models
decode exactly the label length); ``timm:NAME`` profiles a plain timm image classifier (used
to check our timing against timm's own ``benchmark.py``). Synthetic data is made once, outside the timed
region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..data.samples import LineBatch
from ..errors import UserError
from .flops import model_flops_passes

REFERENCE_ASPECT = 16  # reference line width = 16 × height: about 30 handwritten characters
TIMM_PREFIX = "timm:"


def reference_width(height: int) -> int:
    return REFERENCE_ASPECT * height


@dataclass
class Workload:
    """A model and how to feed it. ``batch(n)`` builds inputs on the model's device."""

    name: str
    model: nn.Module
    height: int
    width: int
    channels: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    # the training recipe of a timed training step (optimizer, clipping): the suite's when a suite profiles
    recipe: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        pass

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def input_shape(self, batch_size: int) -> list[int]:
        return [batch_size, self.channels, self.height, self.width]

    def batch(self, batch_size: int, channels_last: bool = False) -> Any:
        raise NotImplementedError

    def infer(self, batch) -> Any:
        raise NotImplementedError

    def loss(self, batch) -> torch.Tensor:
        raise NotImplementedError

    def flops_passes(self) -> dict[str, tuple[nn.Module, tuple]]:
        """Passes to count MACs of, for one sample (see :func:`ocrbench.profile.flops.model_flops_passes`)."""
        raise NotImplementedError


def _memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


class RecognizerWorkload(Workload):
    """A line recognizer of the registry, on synthetic lines of ``height × width`` pixels."""

    def __post_init__(self):
        self.target_length = line_target_length(self.model, self.height, self.width)

    def _lines(self, batch_size: int, device) -> LineBatch:
        g = torch.Generator().manual_seed(0)
        images = torch.rand(batch_size, 1, self.height, self.width, generator=g)
        targets = torch.randint(1, self.model.charset.num_classes, (batch_size, self.target_length), generator=g)
        return LineBatch(images, torch.full((batch_size,), self.width), targets,
                         torch.full((batch_size,), self.target_length), [""] * batch_size).to(device)

    def batch(self, batch_size: int, channels_last: bool = False) -> LineBatch:
        b = self._lines(batch_size, self.device)
        b.images = _memory_format(b.images, channels_last)
        return b

    def infer(self, batch: LineBatch):
        return self.model.profile_predict(batch.images, batch.widths, self.target_length)

    def loss(self, batch: LineBatch) -> torch.Tensor:
        return self.model.loss(batch)

    def flops_passes(self):
        one = self._lines(1, self.device)
        return dict(model_flops_passes(self.model, one.images, one.widths, self.target_length))


class TimmWorkload(Workload):
    """A timm image classifier on random ``channels × height × width`` images (cross-entropy loss)."""

    def batch(self, batch_size: int, channels_last: bool = False):
        g = torch.Generator().manual_seed(0)
        images = torch.randn(self.input_shape(batch_size), generator=g)
        labels = torch.randint(0, self.model.num_classes, (batch_size,), generator=g)
        return _memory_format(images.to(self.device), channels_last), labels.to(self.device)

    def infer(self, batch):
        return self.model(batch[0])

    def loss(self, batch) -> torch.Tensor:
        return F.cross_entropy(self.model(batch[0]), batch[1])

    def flops_passes(self):
        x = torch.zeros(self.input_shape(1), device=self.device)
        return {"train": (self.model, (x,)), "infer": (self.model, (x,))}


def line_target_length(model, height: int, width: int) -> int:
    """Characters per synthetic line: about two per line height of width, as in handwriting, but no more
    than the model can emit for that width (``model.min_input_width``)."""
    length = max(1, 2 * width // height)
    while length > 1 and model.min_input_width(length) > width:
        length -= 1
    return length


def make_workload(name: str, height: int | None = None, width: int | None = None, charset=None,
                  model_kwargs: dict | None = None) -> Workload:
    """Build the model ``name`` (a registry name, or ``timm:NAME``) on the CPU with its workload.

    ``height`` defaults to the model's input height (224 for timm), ``width`` to 16 × height for lines (the
    reference shape) and to ``height`` for timm; line widths are rounded up to the model's output stride.
    """
    if name.startswith(TIMM_PREFIX):
        import timm

        model = timm.create_model(name[len(TIMM_PREFIX):], pretrained=False, **(model_kwargs or {}))
        size = height or model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
        return TimmWorkload(name, model, size, width or size, channels=3)
    from ..models import create_model, model_task

    if model_task(name) != "recognition":
        raise UserError(f"{name} is a {model_task(name)} model; the profiler handles recognizers and timm: models")
    kwargs = dict(model_kwargs or {})
    if height is not None:
        kwargs["input_height"] = height
    model = create_model(name, charset, **kwargs)
    height = model.info.input_height
    stride = model.info.output_stride
    width = max(width or reference_width(height), model.info.min_width)
    width = stride * -(-width // stride)
    return RecognizerWorkload(name, model, height, width)
