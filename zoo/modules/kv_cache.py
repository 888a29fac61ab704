"""KVCache: the self-attention keys and values of the positions a decoder has seen, so each step costs O(t)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KVCache:
    k: torch.Tensor  # (B, heads, t, head_dim)
    v: torch.Tensor  # (B, heads, t, head_dim)
    # (B, t) True where a row has no position: rows that joined a batch with fewer positions than the others are
    # padded on the left (see join_rows). None: every row has all t positions (one batch decoded together).
    pad: torch.Tensor | None = None

    @classmethod
    def empty(cls, batch_size: int, heads: int, head_dim: int, like: torch.Tensor) -> KVCache:
        """A cache of no positions, on ``like``'s device and dtype."""
        empty = like.new_zeros(batch_size, heads, 0, head_dim)
        return cls(empty, empty)

    @property
    def length(self) -> int:
        """The number of positions cached, padding included."""
        return self.k.shape[2]

    def positions(self) -> int | torch.Tensor:
        """Where each row's next token sits: the length, or per row (B,) when rows are padded."""
        return self.length if self.pad is None else self.length - self.pad.sum(1)

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> KVCache:
        """The cache with the keys and values (B, heads, T, head_dim) of T more positions appended."""
        pad = None if self.pad is None else torch.cat([self.pad, self.pad.new_zeros(len(self.pad), k.shape[2])], 1)
        return KVCache(torch.cat([self.k, k], 2), torch.cat([self.v, v], 2), pad)

    def join_rows(self, other: KVCache) -> KVCache:
        """The rows of both caches, the shorter one padded on the left to the longer one's length."""
        length = max(self.length, other.length)
        k, v, pad = zip(*(cache.padded_to(length) for cache in (self, other)))
        return KVCache(torch.cat(k), torch.cat(v), torch.cat(pad))

    def padded_to(self, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, missing = self.k.shape[0], length - self.length
        pad = self.pad if self.pad is not None else self.k.new_zeros(B, self.length, dtype=torch.bool)
        zeros = self.k.new_zeros(B, self.k.shape[1], missing, self.k.shape[3])
        return (
            torch.cat([zeros, self.k], 2),
            torch.cat([zeros, self.v], 2),
            torch.cat([pad.new_ones(B, missing), pad], 1),
        )

    def trimmed(self) -> KVCache:
        """Without the leading positions that are padding in every row (left when the longer rows leave)."""
        if self.pad is None:
            return self
        start = int(self.pad.all(0).long().cumprod(0).sum())  # leading all-padding columns
        pad = self.pad[:, start:]
        return KVCache(self.k[:, :, start:], self.v[:, :, start:], None if not pad.any() else pad)
