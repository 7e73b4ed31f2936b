"""The contract between the harness and a model: the harness calls only what :class:`OCRModel` declares.

- ``task``: ``"recognition"`` (:class:`Recognizer`) or ``"detection"`` (:class:`~ocrbench.models._detection.Detector`);
- ``info``: a :class:`ModelInfo`; ``name``: the class name (the registry name in checkpoints);
- ``collate(samples) -> batch``: the DataLoader's collate function (lines or pages to a padded batch);
- ``loss(batch) -> Tensor``: mean training loss of a batch;
- ``predict(images, ...)``: transcriptions (recognizers) or boxes and scores (detectors);
- ``set_grad_checkpointing(enable)``: recompute activations of the main stages in backward;
- ``num_params()``: trainable and frozen parameters;
- ``flops_passes(images, widths, target_length) -> {"train": (module, inputs), "infer": (...)}``: what the MAC
  counter runs (default: the forward, for both);
- ``profile_predict(images, widths, target_length)``: what the profiler times as inference (default:
  ``predict``; autoregressive models decode exactly ``target_length`` characters);
- ``feature_stages() -> [(name, module)]`` and ``forward_features(images, widths)``: the convolutional
  stages feature maps show, and the call that runs them (default: the forward);
- ``class_labels() -> [str]``: the label of each output class in index order, special classes as ``"<name>"``
  (``"<blank>"``, ``"<pad>"``, ``"<sos>"``, ``"<eos>"``) and characters as themselves, so the two never collide;
- ``class_parameters() -> {state_dict key: axis}``: every parameter whose size follows the charset, and its
  axis indexed by class; that axis holds the first ``size`` entries of ``class_labels()`` (all of them but in
  an auxiliary head without the trailing special classes). Transfer learning
  (:func:`ocrbench.harness.transfer.load_init_weights`) maps these rows by label from one charset to another.
  Default: none (a detector); recognizers must declare theirs.

Recognizers add ``charset``, ``decoders``, ``min_input_width(target_length)``, ``lm_bonus_applies`` and
``max_output_length`` (the most characters one line can be read as: None when only the input width bounds it);
``predict(images, widths, decoding)`` takes a :class:`~ocrbench.decoding.Decoding` (or a decoder's name), and
the model keeps no decoding state.
A mode a model does not support raises ``NotImplementedError`` and shows as ``n/a`` in reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..data.charset import Charset
from ..data.samples import LineBatch, LineCollator, LineSample
from ..decoding import GREEDY, Decoding, as_decoding, ctc_decode, unknown_decoder


@dataclass(frozen=True)
class ModelInfo:
    """Metadata beside the model, apart from its constructor arguments (timm's pretrained_cfg)."""

    input_height: int  # line height (recognizers); the long side of a page (detectors)
    output_stride: int  # image columns per output frame (CTC); the encoder's or prediction grid's stride otherwise
    min_width: int  # narrowest input the network accepts (recognizers); the padding multiple (detectors)
    decoder: str  # "ctc", "attention" or "detector": metadata for listings; behaviour follows the class


FlopsPasses = Mapping[str, tuple[nn.Module, tuple]]

BLANK = "<blank>"  # the CTC blank's label in class_labels (index 0, as in the charset)


def rows_per_class(model: nn.Module, modules: Iterable[str]) -> dict[str, int]:
    """``class_parameters`` of output layers and embeddings (a row per class, axis 0 of each of their
    parameters), given the names of the model's attributes that hold them; an attribute set to None (an
    optional head) is skipped."""
    found = {}
    for name in modules:
        if not hasattr(model, name):
            raise NotImplementedError(f"{type(model).__name__} has no {name!r} layer: override class_parameters()")
        module = getattr(model, name)
        if module is not None:
            found.update({f"{name}.{key}": 0 for key, _ in module.named_parameters()})
    return found


class OCRModel(nn.Module):
    """Base of every model the harness runs (see the module docstring for the contract)."""

    task: str

    def __init__(self, info: ModelInfo):
        super().__init__()
        self.info = info
        self.grad_checkpointing = False
        self.name = type(self).__name__
        self.create_kwargs: dict = {}  # create_model's keyword arguments (the registry sets them; checkpoints keep them)

    def collate(self, samples: list) -> Any:
        raise NotImplementedError

    def loss(self, batch) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *args, **kwargs) -> list:
        raise NotImplementedError

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_passes(self, images: torch.Tensor, widths: torch.Tensor, target_length: int) -> FlopsPasses:
        """Modules and inputs whose MACs are one training step's forward (``train``) and one inference
        (``infer``), for lines of ``target_length`` characters. A module may be a small wrapper whose forward
        runs a decoding loop (every step that runs is counted)."""
        return {"train": (self, (images, widths)), "infer": (self, (images, widths))}

    def profile_predict(self, images: torch.Tensor, widths: torch.Tensor, target_length: int) -> Any:
        """The inference the profiler times, on lines of ``target_length`` characters."""
        return self.predict(images, widths)

    def feature_stages(self) -> list[tuple[str, nn.Module]]:
        """The modules whose outputs are feature maps, input to output: the entries of the ``stages``
        ModuleList (the reference models' convention, see ``blocks.run_stages``), else every ``Conv2d``."""
        stages = self._modules.get("stages")
        if isinstance(stages, nn.ModuleList) and len(stages):
            return [(f"stages.{i}", m) for i, m in enumerate(stages)]
        convs = [(n, m) for n, m in self.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise NotImplementedError(f"{self.name} has no convolutional stages")
        return convs

    def forward_features(self, images: torch.Tensor, widths: torch.Tensor) -> Any:
        """Runs at least every module of :meth:`feature_stages` (forward hooks read their outputs)."""
        return self(images, widths)

    def class_labels(self) -> list[str]:
        """The label of each output class, in index order (see the module docstring); none by default."""
        return []

    def class_parameters(self) -> dict[str, int]:
        """State_dict key -> the axis indexed by class, for every parameter whose size follows the charset."""
        return {}


class Recognizer(OCRModel):
    """Base class of every line recognizer."""

    task = "recognition"
    decoders: tuple[str, ...] = ("greedy",)
    # whether "beam+lm" fuses with the LM config's CTC settings (LMConfig.ctc_weight and the per-character
    # ctc_bonus): a CTC prefix search has no end-of-line probability to stop the LM from favouring short
    # outputs; an autoregressive decoder has one
    lm_bonus_applies: ClassVar[bool] = False

    def __init__(self, charset: Charset, info: ModelInfo):
        super().__init__(info)
        self.charset = charset

    @property
    def max_output_length(self) -> int | None:
        """The most characters one line can be read as (an autoregressive decoder's cap); None: a CTC model
        reads as many as its frames allow (min_input_width pads every line to enough frames)."""
        return None

    def collate(self, samples: list[LineSample]) -> LineBatch:
        """Lines scaled to the input height, padded to ``min_input_width`` and to a multiple of the stride."""
        return LineCollator(self.charset, self.info.input_height, min_width=self.min_input_width,
                            width_multiple=self.info.output_stride)(samples)

    def loss(self, batch: LineBatch) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: torch.Tensor, widths: torch.Tensor, decoding: Decoding | str = GREEDY) -> list[str]:
        raise NotImplementedError

    def min_input_width(self, target_length: int) -> int:
        return self.info.min_width

    def check_decoder(self, decoder: str) -> None:
        if decoder not in self.decoders:
            raise NotImplementedError(unknown_decoder(self.name, decoder, self.decoders))

    def class_labels(self) -> list[str]:
        raise NotImplementedError(f"{self.name} does not declare its output classes (class_labels)")

    def class_parameters(self) -> dict[str, int]:
        # a recognizer always has charset-sized layers: "none" would be a silent error, so each family says
        raise NotImplementedError(f"{self.name} does not declare its charset-sized parameters (class_parameters)")


class CTCRecognizer(Recognizer):
    """A recognizer whose ``forward(images, widths)`` returns per-frame logits ``(B, T, num_classes)``
    trained with CTC (blank = 0). Subclasses implement ``forward`` and ``output_lengths``.
    Decoders: best path, prefix beam search, and prefix beam search with a character LM (shallow fusion)."""

    decoders = ("greedy", "beam", "beam+lm")
    lm_bonus_applies = True

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def class_labels(self) -> list[str]:
        return [BLANK, *self.charset.chars]

    def class_parameters(self) -> dict[str, int]:
        """The output layer ``head`` (the reference models' name for it; a model with others overrides this)."""
        return rows_per_class(self, ["head"])

    def forward_batch(self, batch: LineBatch) -> torch.Tensor:
        """The logits of a training batch: ``self(images, widths)``. A model whose forward needs lengths on the
        host (packing) overrides this to use the batch's CPU widths (``batch.lengths_on_host(copy=False)``)."""
        return self(batch.images, batch.widths)

    def min_input_width(self, target_length: int) -> int:
        # CTC needs a frame per character plus one blank between repeated characters: 2L frames always suffice.
        return max(self.info.min_width, (2 * target_length + 1) * self.info.output_stride)

    def loss(self, batch: LineBatch) -> torch.Tensor:
        logits = self.forward_batch(batch)
        # lengths on the host, from the batch's CPU copies: F.ctc_loss copies its length arguments to the host
        # anyway, and the check below then needs no device→host copy (a sync per training step)
        widths, target_lengths = batch.lengths_on_host()
        lengths = self.output_lengths(widths).clamp(max=logits.shape[1])
        too_long = target_lengths > lengths
        if too_long.any():
            i = int(too_long.nonzero()[0])
            raise ValueError(
                f"label of {int(target_lengths[i])} characters is longer than the {int(lengths[i])} CTC "
                f"frames of its image (width {int(widths[i])}); pad images to model.min_input_width()")
        # CTC in float32 even under autocast: its log-space sums underflow in half precision.
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)
        return F.ctc_loss(log_probs, batch.targets, lengths, target_lengths,
                          blank=0, reduction="mean", zero_infinity=True)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, widths: torch.Tensor, decoding: Decoding | str = GREEDY) -> list[str]:
        decoding = as_decoding(decoding)
        self.check_decoder(decoding.name)
        logits = self(images, widths)
        lengths = self.output_lengths(widths).clamp(max=logits.shape[1])
        return [self.charset.decode(i) for i in ctc_decode(logits, lengths, decoding)]
