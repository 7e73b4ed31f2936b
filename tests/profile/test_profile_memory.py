import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ocrbench.profile import cuda_peak_memory, saved_activation_bytes


def test_counts_saved_activations_once_per_storage_without_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    x = torch.randn(4, 16)
    saved, out = saved_activation_bytes(lambda: net(x).sum(), net.parameters())
    # the input of the first linear (4×16 floats) and the ReLU output, which the ReLU (for its mask) and
    # the second linear (as its input) both save: one storage, counted once (4×8 floats)
    assert saved == (4 * 16 + 4 * 8) * 4
    assert out.ndim == 0


def test_non_reentrant_checkpointing_keeps_only_the_stage_input():
    net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    x = torch.randn(8, 16, requires_grad=True)
    full, _ = saved_activation_bytes(lambda: net(x).sum(), net.parameters())
    ckpt, _ = saved_activation_bytes(lambda: checkpoint(net, x, use_reentrant=False).sum(), net.parameters())
    assert ckpt == 8 * 16 * 4 < full


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_memory():
    with cuda_peak_memory("cuda") as mem:
        x = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")
        del x
    assert mem["allocated"] >= 64 * 2**20 and mem["reserved"] >= mem["allocated"]


def test_peak_memory_starts_from_an_empty_cache(monkeypatch):
    """Cached blocks of earlier work are released before the peaks are reset, so the reserved figure does not
    depend on what ran before (checked by call order; the figures themselves need CUDA)."""
    calls = []
    for name in ("synchronize", "empty_cache", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, _name=name: calls.append(_name))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 1)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda *a: 2)
    with cuda_peak_memory("cuda") as mem:
        calls.append("body")
    assert calls.index("empty_cache") < calls.index("reset_peak_memory_stats") < calls.index("body")
    assert mem == {"allocated": 1, "reserved": 2}
    calls.clear()
    with cuda_peak_memory("cuda", empty_cache=False):  # the profiler empties it itself, before the warm-up
        pass
    assert "empty_cache" not in calls and "reset_peak_memory_stats" in calls
