"""KVCache: the self-attention keys and values of the positions a decoder has seen, so each step costs O(t)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    k: torch.Tensor  # (B, heads, t, head_dim)
    v: torch.Tensor  # (B, heads, t, head_dim)

    @classmethod
    def empty(cls, batch_size: int, heads: int, head_dim: int, like: torch.Tensor) -> KVCache:
        """A cache of no positions, on ``like``'s device and dtype."""
        empty = like.new_zeros(batch_size, heads, 0, head_dim)
        return cls(empty, empty)

    @property
    def length(self) -> int:
        """The number of positions cached: where the next token's position starts."""
        return self.k.shape[2]

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> KVCache:
        """The cache with the keys and values (B, heads, T, head_dim) of T more positions appended."""
        return KVCache(torch.cat([self.k, k], 2), torch.cat([self.v, v], 2))
