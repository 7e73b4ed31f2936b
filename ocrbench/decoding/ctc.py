"""CTC decoding shared by every CTC model (one implementation)."""

from __future__ import annotations

import torch


def ctc_greedy_decode(logits: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        logits: ``(B, T, C)`` scores (logits or log-probabilities).
        lengths: ``(B,)`` number of valid frames per sequence.
    Returns:
        One list of class indices per sequence.
    """
    best = logits.argmax(-1)  # (B, T)
    T = best.shape[1]
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    valid = torch.arange(T, device=best.device)[None, :] < lengths.to(best.device)[:, None]
    keep = changed & (best != blank) & valid
    best, keep = best.cpu(), keep.cpu()
    return [row[mask].tolist() for row, mask in zip(best, keep)]
