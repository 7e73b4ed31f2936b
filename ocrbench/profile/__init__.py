"""Measurement: MACs/FLOPs (counted at the dispatcher: FlopCounterMode plus formulas for RNNs and attention;
fvcore as an optional cross-check), step timing, memory, MFU, torch.compile against eager, batch sweeps.

``count_flops(module, inputs)`` is the public FLOP counter; ``profile_model``/``profile_many`` produce the
rows of ``ocrbench profile`` and of the suite's ``<results>/profiles.jsonl``. See docs/profiling.md.
"""

from ..records import PROFILES_FILE  # where profile rows go; named here for the callers of profile_model
from .batch_sweep import SweepResult, sweep_batch_sizes
from .compiled import COMPILE_MODES
from .flops import FlopCount, UncountedOpError, count_flops, model_flops_passes
from .memory import cuda_peak_memory, saved_activation_bytes
from .mfu import PEAKS, mfu, peak_flops
from .runner import (
    ProfileSpec,
    expand_models,
    make_train_step,
    profile_many,
    profile_model,
    suite_profile,
)
from .timing import TimingStats, time_steps
from .workloads import REFERENCE_ASPECT, make_workload, reference_width

__all__ = ["COMPILE_MODES", "PEAKS", "PROFILES_FILE", "REFERENCE_ASPECT", "FlopCount", "ProfileSpec", "SweepResult",
           "TimingStats", "UncountedOpError", "count_flops", "cuda_peak_memory", "expand_models", "make_train_step",
           "make_workload", "mfu", "model_flops_passes", "peak_flops", "profile_many", "profile_model",
           "reference_width", "saved_activation_bytes", "suite_profile", "sweep_batch_sizes", "time_steps"]
