"""Deployment measurements: ONNX export with a parity check, batch-1 latency by line length (PyTorch eager,
``torch.compile``, onnxruntime), int8 dynamic quantisation, and the checkpoint zoo.

- :mod:`.export`: a model to ONNX graphs through the model contract (CTC recognizers and detectors: the forward;
  autoregressive recognizers: the encoder, with the decoder's initial state, and one decoder step);
- :mod:`.runtime`: those graphs in onnxruntime behind the recognizer's ``predict`` (so the harness's
  ``evaluate`` scores them) and the logits parity against PyTorch;
- :mod:`.latency`: one-line latency by line length, and the int8 rows;
- :mod:`.table`: the rows' Markdown table and plot; :mod:`.zoo`: the index of reference checkpoints.

``onnx`` and ``onnxruntime`` are the ``deploy`` extra: imported only where used, behind :func:`require`.
See docs/deployment.md.
"""

from .export import ONNX_EXTRA, require

__all__ = ["ONNX_EXTRA", "require"]
