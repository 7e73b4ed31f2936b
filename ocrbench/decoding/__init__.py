"""Decoders shared by models: CTC greedy (and, with the sequence-decoder work, beam search and LM fusion)."""

from .ctc import ctc_greedy_decode

__all__ = ["ctc_greedy_decode"]
