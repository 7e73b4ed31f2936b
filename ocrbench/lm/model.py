"""A small character-level LSTM language model over text lines, used for shallow fusion in beam search.

Token indices are the ones every ocrbench decoder uses: 0 = padding (the CTC blank), ``1..N`` the
characters of the charset, ``N + 1`` = start of line, ``N + 2`` = end of line. A sequence model's output
vocabulary has the same layout, so LM and model scores add column by column.
"""

from __future__ import annotations

import torch
from torch import nn

# Log-probability of tokens the LM never predicts (padding, start). Finite on purpose: shallow fusion
# multiplies LM scores by a weight that may be 0, and 0 * -inf would be NaN.
NEVER = -1e4

LMState = tuple[torch.Tensor, torch.Tensor]  # LSTM (h, c), each (layers, N, hidden)


class CharLM(nn.Module):
    """Embedding → LSTM → linear head; predicts the next token of a line.

    Args:
        chars: the charset's characters, in index order (index i+1 for chars[i]).
        hidden, layers, embed, dropout: LSTM size.
    """

    def __init__(self, chars: str, hidden: int = 256, layers: int = 1, embed: int = 64, dropout: float = 0.0):
        super().__init__()
        self.chars = chars
        self.hparams = {"hidden": hidden, "layers": layers, "embed": embed, "dropout": dropout}
        self.bos, self.eos, self.vocab = len(chars) + 1, len(chars) + 2, len(chars) + 3
        self.embedding = nn.Embedding(self.vocab, embed, padding_idx=0)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, self.vocab)
        never = torch.zeros(self.vocab, dtype=torch.bool)
        never[[0, self.bos]] = True
        self.register_buffer("never", never, persistent=False)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Float32 log-probabilities with padding and start tokens set to :data:`NEVER`."""
        logits = logits.float().masked_fill(self.never, float("-inf"))
        return logits.log_softmax(-1).clamp(min=NEVER)

    def forward(self, tokens: torch.Tensor, state: LMState | None = None) -> tuple[torch.Tensor, LMState]:
        """``(B, L)`` input tokens → ``(B, L, vocab)`` next-token log-probabilities and the final state."""
        out, state = self.lstm(self.dropout(self.embedding(tokens)), state)
        return self.log_probs(self.head(self.dropout(out))), state

    def encode_lines(self, lines: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs ``[BOS] + chars`` and targets ``chars + [EOS]``, zero padded, for lines already in the charset."""
        index = {c: i + 1 for i, c in enumerate(self.chars)}
        longest = max(len(line) for line in lines) + 1
        inputs = torch.zeros(len(lines), longest, dtype=torch.long)
        targets = torch.zeros(len(lines), longest, dtype=torch.long)
        for i, line in enumerate(lines):
            ids = [index[c] for c in line]
            inputs[i, : len(ids) + 1] = torch.tensor([self.bos] + ids)
            targets[i, : len(ids) + 1] = torch.tensor(ids + [self.eos])
        return inputs, targets

    def nll(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood (nats) of ``targets`` per line, padding (0) ignored: ``(B,)``."""
        logp, _ = self(inputs)
        picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return -(picked * (targets != 0)).sum(-1)

    # ---- incremental interface used by the decoders ----
    def start(self, n: int, device=None) -> tuple[torch.Tensor, LMState]:
        """Log-probabilities of the first token of ``n`` lines ``(n, vocab)`` and the state after the start token."""
        bos = torch.full((n,), self.bos, dtype=torch.long, device=device)
        return self.step(bos, None)

    def step(self, tokens: torch.Tensor, state: LMState | None) -> tuple[torch.Tensor, LMState]:
        """Feed one token per row ``(n,)``; returns next-token log-probabilities ``(n, vocab)`` and the new state.
        Always float32 (no autocast): fused scores must not lose precision against the model's."""
        with torch.autocast(tokens.device.type, enabled=False):
            logp, state = self(tokens[:, None], state)
        return logp[:, 0], state

    @staticmethod
    def select(state: LMState, rows: torch.Tensor) -> LMState:
        """The states of ``rows`` (beam reordering)."""
        return state[0].index_select(1, rows), state[1].index_select(1, rows)

    @staticmethod
    def concat(states: list[LMState]) -> LMState:
        """Row-wise concatenation of state batches."""
        return torch.cat([s[0] for s in states], 1), torch.cat([s[1] for s in states], 1)


def check_lm_charset(lm: CharLM, chars: str) -> None:
    """An LM can be fused only into a model whose token indices mean the same characters."""
    if lm.chars != chars:
        only_lm = "".join(sorted(set(lm.chars) - set(chars)))
        only_model = "".join(sorted(set(chars) - set(lm.chars)))
        raise ValueError(f"the language model's charset differs from the model's (only in LM: {only_lm!r}, "
                         f"only in model: {only_model!r}, or a different order); train an LM for this charset "
                         "with `ocrbench lm train`")
