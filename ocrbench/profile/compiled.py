"""Compiled against eager: the same step with the model's calls wrapped in ``torch.compile``.

What is compiled is what the harness calls through the model contract, never a model's internals: in an
inference step ``predict`` (forward and greedy decoding; decoding's host-side loops become graph breaks), in a
training step the loss (forward and loss; AOTAutograd compiles its backward), with gradient clipping and the
AdamW step left eager, as timm's ``--torchcompile`` leaves them. ``compile_s`` is the wall time of the first
compiled step: tracing, inductor's code generation (a C++ compiler on the CPU) and that step. Torch keeps
an on-disk cache of compiled graphs, so a second profile of the same model compiles faster; the row records
the time this run took. Dynamo's in-memory caches are cleared before and after each row, so a row never
reuses another row's graphs. Any failure (an unsupported op, a compiler error, out-of-memory) becomes the row's
``compile_error``; the eager numbers stand.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .timing import time_steps

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
ERROR_CHARS = 400  # dynamo's messages run to pages; the row keeps the start, which names the cause


def compile_error_text(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


def time_compiled(make_step: Callable[[Callable], Callable[[], object]], mode: str, device: torch.device,
                  batch_size: int, warmup: int, iters: int, max_seconds: float | None, min_iters: int) -> dict:
    """Time a step whose model calls are compiled.

    Args:
        make_step: given a wrapper (``fn -> compiled fn``), returns the step with the model calls wrapped.
        mode: ``torch.compile`` mode (:data:`COMPILE_MODES`).
    Returns:
        ``compile_mode``, ``compile_s``, ``compiled_step_ms_*`` and ``compiled_samples_per_s``; or
        ``compile_mode`` and ``compile_error``.
    """
    out: dict = {"compile_mode": mode}
    torch._dynamo.reset()
    try:
        step = make_step(lambda fn: torch.compile(fn, mode=mode))
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out["compile_s"] = round(time.perf_counter() - start, 3)
        stats = time_steps(step, device, warmup=warmup, iters=iters, max_seconds=max_seconds, min_iters=min_iters)
    except Exception as e:  # a model that does not compile still has its eager numbers
        out.pop("compile_s", None)
        return {**out, "compile_error": compile_error_text(e)}
    finally:
        torch._dynamo.reset()
    timing = {k: v for k, v in stats.as_dict("compiled_step_ms").items() if k.startswith("compiled_")}
    return {**out, **timing, "compiled_samples_per_s": round(stats.per_second(batch_size), 3)}
