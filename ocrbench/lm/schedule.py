"""The learning-rate schedule of the shared recipe, used by model training and LM training alike.

It lives in lm/, the lower of its two users: the harness imports lm/ (evaluation with an LM), never the reverse.
"""

from __future__ import annotations

import math


def one_cycle_factor(step: int, total: int, pct_start: float) -> float:
    """LR multiplier of the one-cycle policy (Smith 2018): linear warm-up from 1/25 to 1 over
    ``pct_start`` of the steps, then cosine annealing to 1e-4. A pure function of the step, so a resumed
    run needs no scheduler state."""
    warm = max(1, int(total * pct_start))
    if step < warm:
        return 1 / 25 + (1 - 1 / 25) * step / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * progress))
