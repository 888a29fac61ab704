"""Attention over encoder outputs for RNN decoders: Bahdanau (additive) and Luong (dot, general, concat).

Every kind scores each source position against a query, masks pads to -inf and returns
the softmax weights (exactly 0 on pads, summing to 1 over real tokens) and the context,
their weighted sum of encoder outputs. The key side does not depend on the query, so
``project_keys`` runs once per source and the decoder reuses it at every step.

    additive (bahdanau, concat): score(q, k) = v . tanh(W_q q + W_k k)
    general:                     score(q, k) = q . (W k)
    dot:                         score(q, k) = q . k
Bahdanau and Luong's concat share the additive score; they differ in which decoder
state is the query (previous for Bahdanau, current for Luong), decided by the decoder.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

AttentionKind = Literal["bahdanau", "dot", "general", "concat"]


class Attention(nn.Module):
    def __init__(self, kind: AttentionKind, query_dim: int, key_dim: int, attention_dim: int):
        super().__init__()
        if kind not in ("bahdanau", "dot", "general", "concat"):
            raise ValueError(f"attention must be 'bahdanau', 'dot', 'general' or 'concat', got {kind!r}")
        if kind == "dot" and query_dim != key_dim:
            raise ValueError(f"dot attention needs equal query and key sizes, got {query_dim} and {key_dim}")
        self.additive = kind in ("bahdanau", "concat")
        if self.additive:
            self.key_proj = nn.Linear(key_dim, attention_dim, bias=False)
            self.query_proj = nn.Linear(query_dim, attention_dim)
            self.v = nn.Linear(attention_dim, 1, bias=False)
        elif kind == "general":
            self.key_proj = nn.Linear(key_dim, query_dim, bias=False)
        else:
            self.key_proj = nn.Identity()

    def project_keys(self, encoder_outputs: torch.Tensor) -> torch.Tensor:
        """(B, S, key_dim) -> the query-independent part of the scores, once per source."""
        return self.key_proj(encoder_outputs)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, pad_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q) for one step, or (B, T, Q) for T steps at once; keys (B, S, .), values (B, S, D), pad_mask
        (B, S) -> context (B, D) and weights (B, S), or (B, T, D) and (B, T, S)."""
        steps = query if query.dim() == 3 else query[:, None]  # (B, T, Q)
        if self.additive:
            scores = self.v(torch.tanh(keys[:, None] + self.query_proj(steps)[:, :, None])).squeeze(-1)  # (B, T, S)
        else:
            scores = torch.bmm(steps, keys.transpose(1, 2))  # (B, T, S)
        weights = scores.masked_fill(pad_mask[:, None], float("-inf")).softmax(dim=-1)
        context = torch.bmm(weights, values)  # (B, T, D)
        return (context, weights) if query.dim() == 3 else (context[:, 0], weights[:, 0])
