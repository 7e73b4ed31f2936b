"""pytest-benchmark suites: ``pytest benchmarks --benchmark-only`` (CPU, tiny inputs) or ``--device cuda``.

Results are saved per device (``.benchmarks/<device>/``, with ``--benchmark-autosave``) so CPU and GPU runs are
never compared with each other. The timed functions synchronise the device: pytest-benchmark reads a host
clock, and an unsynchronised CUDA call returns before its kernels finish. Everything runs in fp32 without TF32
(``set_matmul_precision(device, "fp32")``, as the profiler's fp32 rows): torch's default allows TF32 in cuDNN
convolutions and RNNs, which would make these "fp32" numbers a mix.
"""

from __future__ import annotations

import re

import pytest
import torch

from ocrbench.records import device_name, git_revision
from ocrbench.runtime import set_matmul_precision

PRECISION = "fp32"  # what every benchmark here runs in (test_bench_models passes "fp32" to its train step)


def pytest_addoption(parser):
    group = parser.getgroup("ocrbench", "ocrbench benchmarks")
    group.addoption("--device", default="cpu", help="cpu (default), cuda, cuda:1 ...")
    group.addoption("--bench-models", default="all",
                    help="models to benchmark: 'all' (every recognizer but *_tiny), a wildcard or a comma list")
    group.addoption("--bench-height", type=int, default=None,
                    help="line height (default 32 on CPU, 64 on CUDA); width = 4 x height on CPU (tiny inputs), "
                         "16 x height (the reference shape) on CUDA")
    group.addoption("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")


def _device(config) -> torch.device:
    device = torch.device(config.getoption("--device"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda: torch sees no CUDA device")
    return device


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Store results per device unless --benchmark-storage was given (runs before pytest-benchmark reads it)."""
    if config.getoption("--threads"):
        torch.set_num_threads(config.getoption("--threads"))
    storage = getattr(config.option, "benchmark_storage", None)
    if storage in ("file://./.benchmarks", None) and hasattr(config.option, "benchmark_storage"):
        device = _device(config)
        slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{device.type}-{device_name(device)}").strip("_")
        config.option.benchmark_storage = f"file://./.benchmarks/{slug}"


def pytest_benchmark_update_machine_info(config, machine_info):
    device = _device(config)
    machine_info.update(torch=torch.__version__, ocrbench_device=str(device), device_name=device_name(device),
                        torch_threads=torch.get_num_threads(), git=git_revision())
    machine_info.update(precision=PRECISION)
    if device.type == "cuda":
        machine_info.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    device = _device(request.config)
    set_matmul_precision(device, PRECISION)
    return device


@pytest.fixture(scope="session")
def line_shape(request, device) -> tuple[int, int]:
    height = request.config.getoption("--bench-height") or (64 if device.type == "cuda" else 32)
    return height, (16 if device.type == "cuda" else 4) * height


@pytest.fixture
def synced(device):
    """Wrap a step so that it returns only when the device is done (what a host clock must time)."""
    def wrap(step):
        def run():
            out = step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return out
        return run
    return wrap


def bench_models(config) -> list[str]:
    from ocrbench.profile import expand_models

    return expand_models([m for m in config.getoption("--bench-models").split(",") if m])


def pytest_generate_tests(metafunc):
    if "model_name" in metafunc.fixturenames:
        metafunc.parametrize("model_name", bench_models(metafunc.config))
