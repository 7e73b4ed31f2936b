"""The FLOP counter needs no TorchScript: with every torch.jit entry point raising, every registered model is
still counted, to the MAC, as the independent jit-based count (fvcore) counted it beforehand."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from ocrbench.models import create_model, list_models, model_task
from ocrbench.profile import count_flops, make_workload

JIT_ENTRY_POINTS = ("trace", "trace_module", "script", "_get_trace_graph")
# the C++ entry points under them: whatever imported a jit function by name early (fvcore imports
# _get_trace_graph) still reaches the tracer or the script compiler through these
JIT_C_ENTRY_POINTS = ("_create_graph_by_tracing", "_create_function_from_trace",
                      "_create_function_from_trace_with_dict", "_jit_script_compile")
LINE = dict(height=32, width=128)
PAGE = (1, 1, 128, 96)  # a detector's page, sides multiples of its 32-pixel stride


class TorchScriptDisabled(RuntimeError):
    pass


def registry_models() -> list[str]:
    """Every registered model, as its family's ``*_tiny`` variant where there is one (same code, cheaper)."""
    names = set(list_models())

    def tiny(name: str) -> str:
        return re.sub(r"_(small|tiny)$", "", name) + "_tiny"

    return sorted({tiny(n) if tiny(n) in names else n for n in names})


def passes(name: str) -> dict:
    """What the profiler counts for ``name``: a recognizer's train and infer passes, a detector's forward."""
    if model_task(name) == "recognition":
        return make_workload(name, **LINE).flops_passes()
    model = create_model(name, input_height=PAGE[2])
    return {"forward": (model, (torch.zeros(PAGE),))}


def disable_torchscript(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise TorchScriptDisabled("torch.jit is disabled in this test")

    for entry in JIT_ENTRY_POINTS:
        monkeypatch.setattr(torch.jit, entry, refuse)
    for entry in JIT_C_ENTRY_POINTS:
        monkeypatch.setattr(torch._C, entry, refuse)


def test_every_registered_model_is_counted_exactly_without_torchscript(monkeypatch):
    from ocrbench.profile.fvcore_check import count_flops_fvcore, cross_checked

    built = {name: passes(name) for name in registry_models()}
    assert {"crnn_tiny", "yolo_lines_tiny"} <= set(built)
    reference = {(name, mode): count_flops_fvcore(*p).macs for name, ps in built.items() for mode, p in ps.items()}
    disable_torchscript(monkeypatch)
    for (name, mode), macs in reference.items():
        result = count_flops(*built[name][mode], strict=True)
        assert result.macs == macs > 0, (name, mode)
    # the patch bites: the jit-based counter now fails, and a cross-check records that instead of raising
    module, inputs = built["crnn_tiny"]["infer"]
    with pytest.raises(TorchScriptDisabled):
        count_flops_fvcore(module, inputs)
    checked = cross_checked(count_flops(module, inputs), module, inputs)
    assert checked.fvcore_macs is None and "TorchScriptDisabled" in checked.cross_check_error


def test_the_default_path_never_imports_fvcore():
    """fvcore scripts a loss with torch.jit.script when imported: the default path must not import it."""
    code = ("import sys, torch\n"
            "from ocrbench.profile import profile_model, ProfileSpec\n"
            "rows = profile_model('crnn_tiny', [ProfileSpec('infer', 1, warmup=0, iters=1)], device='cpu',"
            " height=32, width=64)\n"
            "assert rows[0]['status'] == 'ok' and rows[0]['macs_per_line_infer'] > 0, rows[0]\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fvcore', 'iopath')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
