"""Positional encodings: sinusoidal (Vaswani et al. 2017), learned, and a sin-only variant kept to show aliasing.

    PE(p, 2i)   = sin(p / 10000^(2i/d))
    PE(p, 2i+1) = cos(p / 10000^(2i/d))
Each (sin, cos) pair is a point on a circle at angle p * w_i, so it pins down p modulo the
pair's period. The sin-only variant puts sin(p * w_i) in both dimensions of the pair:
p and q with sin(p w_i) = sin(q w_i) (q w_i = pi - p w_i, say) then look identical there.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

PositionalKind = Literal["sinusoidal", "learned", "sin_only"]


def sinusoidal_table(max_len: int, d_model: int, sin_only: bool = False) -> torch.Tensor:
    """(max_len, d_model) encodings of positions 0 .. max_len - 1."""
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (L, 1)
    frequency = 10000 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,) = 1 / 10000^(2i/d)
    angle = position * frequency  # (L, d/2)
    table = torch.empty(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.sin(angle[:, : d_model // 2]) if sin_only else torch.cos(angle[:, : d_model // 2])
    return table.float()


class PositionalEncoding(nn.Module):
    """Adds position information to (B, T, D) embeddings, starting at position ``offset``."""

    def __init__(self, kind: PositionalKind, d_model: int, max_len: int):
        super().__init__()
        if kind not in ("sinusoidal", "learned", "sin_only"):
            raise ValueError(f"positional encoding must be 'sinusoidal', 'learned' or 'sin_only', got {kind!r}")
        self.max_len = max_len
        if kind == "learned":
            self.table = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            self.register_buffer("table", sinusoidal_table(max_len, d_model, kind == "sin_only"), persistent=False)

    def forward(self, x: torch.Tensor, offset: int | torch.Tensor = 0) -> torch.Tensor:
        """``offset``: the first position, the same for every row, or one per row (B,) (rows joined mid-decode)."""
        last = offset + x.shape[1] if isinstance(offset, int) else int(offset.max()) + x.shape[1]
        if last > self.max_len:
            raise ValueError(
                f"a sequence reaching position {last} is longer than this model's "
                f"{self.max_len} positions. Fix: shorten it, or train with a larger max_positions."
            )
        if isinstance(offset, int):
            return x + self.table[offset : offset + x.shape[1]]
        return x + self.table[offset[:, None] + torch.arange(x.shape[1], device=offset.device)]  # (B, T, D)
