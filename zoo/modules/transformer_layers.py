"""Transformer encoder and decoder layers, pre- or post-norm, with a key/value cache in the decoder.

Dropout as in Vaswani et al.: on each sub-layer's output before the residual sum (and, in the
models, on the embeddings), not inside attention or the feed-forward. Dropout masks are costly
on a CPU (a random number per element), and fairseq's defaults agree.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.modules.kv_cache import KVCache
from zoo.modules.multi_head_attention import MultiHeadAttention


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ffn_dim: int):
        super().__init__(nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Linear(ffn_dim, d_model))


class Residual(nn.Module):
    """x + dropout(f(norm(x))) (pre-norm) or norm(x + dropout(f(x))) (post-norm, the original)."""

    def __init__(self, d_model: int, dropout: float, norm_first: bool):
        super().__init__()
        self.norm, self.dropout, self.norm_first = nn.LayerNorm(d_model), nn.Dropout(dropout), norm_first

    def forward(self, x: torch.Tensor, fn) -> torch.Tensor:
        if self.norm_first:
            return x + self.dropout(fn(self.norm(x)))
        return self.norm(x + self.dropout(fn(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, norm_first: bool):
        super().__init__()
        self.attention = MultiHeadAttention(d_model, heads)
        self.feed_forward = FeedForward(d_model, ffn_dim)
        self.residuals = nn.ModuleList(Residual(d_model, dropout, norm_first) for _ in range(2))

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        x = self.residuals[0](x, lambda h: self.attention(h, *self.attention.keys_values(h), key_pad_mask=pad_mask))
        return self.residuals[1](x, self.feed_forward)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder (``cross=False`` for a decoder-only LM), feed-forward."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, norm_first: bool, cross: bool = True):
        super().__init__()
        self.self_attention = MultiHeadAttention(d_model, heads)
        self.cross_attention = MultiHeadAttention(d_model, heads) if cross else None
        self.feed_forward = FeedForward(d_model, ffn_dim)
        self.residuals = nn.ModuleList(Residual(d_model, dropout, norm_first) for _ in range(3 if cross else 2))

    def forward(
        self,
        x: torch.Tensor,
        cache: KVCache,
        memory_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        memory_pad_mask: torch.Tensor | None = None,
        cross_weights: bool = False,
    ) -> tuple[torch.Tensor, KVCache, torch.Tensor | None]:
        """x (B, T, D): the next T target positions; the cache holds the keys/values of all earlier ones.
        Returns the outputs (B, T, D), the cache extended by these positions and, with ``cross_weights``,
        their head-averaged cross-attention (B, T, S) (else None)."""
        extended, weights = cache, None

        def self_attend(h: torch.Tensor) -> torch.Tensor:
            nonlocal extended
            extended = cache.extend(*self.self_attention.keys_values(h))
            return self.self_attention(h, extended.k, extended.v, causal=True)

        x = self.residuals[0](x, self_attend)

        def cross_attend(h: torch.Tensor) -> torch.Tensor:
            nonlocal weights
            if cross_weights:
                weights = self.cross_attention.weights(h, memory_kv[0], memory_pad_mask)
            return self.cross_attention(h, *memory_kv, key_pad_mask=memory_pad_mask)

        if self.cross_attention is not None:
            x = self.residuals[1](x, cross_attend)
        return self.residuals[-1](x, self.feed_forward), extended, weights
