"""Transformer blocks, pre- or post-norm, and the stacks the models are built from.

Each sub-layer f (self-attention, cross-attention, feed-forward) is wrapped in a residual with its own norm:

    pre-norm (the default, stabler):  x = x + dropout(f(norm(x)))     and the stack ends in one more norm
    post-norm (Vaswani et al.):       x = norm(x + dropout(f(x)))     (the last block already ends in a norm)

Dropout as in Vaswani et al.: on each sub-layer's output before the residual sum (and, in the
models, on the embeddings), not inside attention or the feed-forward. Dropout masks are costly
on a CPU (a random number per element), and fairseq's defaults agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zoo.generation.nested import pad_positions
from zoo.modules.kv_cache import KVCache
from zoo.modules.multi_head_attention import MultiHeadAttention


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ffn_dim: int):
        super().__init__(nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Linear(ffn_dim, d_model))


@dataclass
class CrossMemory:
    """What one decoder block's cross-attention reads of the source, computed once per source."""

    keys_values: tuple[torch.Tensor, torch.Tensor]  # (B, heads, S, head_dim) each
    pad_mask: torch.Tensor  # (B, S)

    def join_rows(self, other: CrossMemory) -> CrossMemory:
        """The rows of both, the shorter sources padded (masked) to the longer ones' length."""
        S = max(self.pad_mask.shape[1], other.pad_mask.shape[1])
        k, v = (torch.cat([pad_positions(m.keys_values[i], S, 2) for m in (self, other)]) for i in (0, 1))
        return CrossMemory((k, v), torch.cat([pad_positions(m.pad_mask, S, 1, True) for m in (self, other)]))


class EncoderBlock(nn.Module):
    """Self-attention over the source, then the feed-forward."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, norm_first: bool):
        super().__init__()
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(d_model, heads)
        self.feed_forward = FeedForward(d_model, ffn_dim)
        self.self_attention_norm = nn.LayerNorm(d_model)
        self.feed_forward_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def self_attend(self, h: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        return self.attention(h, *self.attention.keys_values(h), key_pad_mask=pad_mask)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """x (B, S, D), pad_mask (B, S) -> (B, S, D)."""
        if self.norm_first:
            x = x + self.dropout(self.self_attend(self.self_attention_norm(x), pad_mask))
            return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))
        x = self.self_attention_norm(x + self.dropout(self.self_attend(x, pad_mask)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class DecoderBlock(nn.Module):
    """Causal self-attention (its keys and values cached), cross-attention to the source (``cross=False``: none,
    for a decoder-only LM), then the feed-forward."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, norm_first: bool, cross: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.self_attention = MultiHeadAttention(d_model, heads)
        self.cross_attention = MultiHeadAttention(d_model, heads) if cross else None
        self.feed_forward = FeedForward(d_model, ffn_dim)
        self.self_attention_norm = nn.LayerNorm(d_model)
        self.cross_attention_norm = nn.LayerNorm(d_model) if cross else None
        self.feed_forward_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def self_attend(self, h: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """h (B, T, D), the next T positions -> their attention over the cached positions and themselves, and the
        cache extended by them."""
        cache = cache.extend(*self.self_attention.keys_values(h))
        return self.self_attention(h, cache.k, cache.v, key_pad_mask=cache.pad, causal=True), cache

    def cross_attend(self, h: torch.Tensor, memory: CrossMemory, with_weights: bool):
        """h (B, T, D) -> attention over the source (B, T, D) and, if asked, its head-averaged weights (B, T, S)."""
        out = self.cross_attention(h, *memory.keys_values, key_pad_mask=memory.pad_mask)
        weights = self.cross_attention.weights(h, memory.keys_values[0], memory.pad_mask) if with_weights else None
        return out, weights

    def forward(
        self, x: torch.Tensor, cache: KVCache, memory: CrossMemory | None = None, cross_weights: bool = False
    ) -> tuple[torch.Tensor, KVCache, torch.Tensor | None]:
        """x (B, T, D): the next T target positions, after those in ``cache``. Returns the outputs (B, T, D), the
        cache extended by these positions and, with ``cross_weights``, their cross-attention (B, T, S) (else None)."""
        weights = None
        if self.norm_first:
            h, cache = self.self_attend(self.self_attention_norm(x), cache)
            x = x + self.dropout(h)
            if self.cross_attention is not None:
                h, weights = self.cross_attend(self.cross_attention_norm(x), memory, cross_weights)
                x = x + self.dropout(h)
            return x + self.dropout(self.feed_forward(self.feed_forward_norm(x))), cache, weights
        h, cache = self.self_attend(x, cache)
        x = self.self_attention_norm(x + self.dropout(h))
        if self.cross_attention is not None:
            h, weights = self.cross_attend(x, memory, cross_weights)
            x = self.cross_attention_norm(x + self.dropout(h))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x))), cache, weights


class TransformerEncoder(nn.Module):
    """A stack of encoder blocks and, pre-norm, the final norm."""

    def __init__(self, layers: int, d_model: int, heads: int, ffn_dim: int, dropout: float, norm_first: bool):
        super().__init__()
        self.layers = nn.ModuleList(EncoderBlock(d_model, heads, ffn_dim, dropout, norm_first) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """x (B, S, D) -> the memory (B, S, D)."""
        for layer in self.layers:
            x = layer(x, pad_mask)
        return self.norm(x)


class TransformerDecoder(nn.Module):
    """A stack of decoder blocks and, pre-norm, the final norm: the Transformer's decoder (``cross=True``) and the
    whole of TransformerLM (``cross=False``)."""

    def __init__(
        self, layers: int, d_model: int, heads: int, ffn_dim: int, dropout: float, norm_first: bool, cross: bool
    ):
        super().__init__()
        self.heads = heads
        self.layers = nn.ModuleList(
            DecoderBlock(d_model, heads, ffn_dim, dropout, norm_first, cross) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def empty_caches(self, batch_size: int, like: torch.Tensor) -> list[KVCache]:
        """One cache of no positions per block, on ``like``'s device and dtype."""
        d_model = self.layers[0].self_attention.query.in_features
        return [KVCache.empty(batch_size, self.heads, d_model // self.heads, like) for _ in self.layers]

    def cross_memory(self, memory: torch.Tensor, pad_mask: torch.Tensor) -> list[CrossMemory]:
        """The encoder's memory (B, S, D) as each block's cross-attention reads it, computed once per source."""
        return [CrossMemory(layer.cross_attention.keys_values(memory), pad_mask) for layer in self.layers]

    def forward(
        self,
        x: torch.Tensor,
        caches: list[KVCache],
        memory: list[CrossMemory] | None = None,
        cross_weights: bool = False,
    ) -> tuple[torch.Tensor, list[KVCache], torch.Tensor | None]:
        """x (B, T, D), the next T positions -> hidden states (B, T, D), the extended caches, and with
        ``cross_weights`` the last block's cross-attention (B, T, S)."""
        extended, weights = [], None
        for i, (layer, cache) in enumerate(zip(self.layers, caches)):
            last = i == len(self.layers) - 1
            x, cache, layer_weights = layer(x, cache, None if memory is None else memory[i], cross_weights and last)
            extended.append(cache)
            weights = layer_weights if last else None
        return self.norm(x), extended, weights


def old_layer_names(old_stack: str, old_norm: str, stack: str, cross: bool) -> list[tuple[str, str]]:
    """The renames (zoo.modules.renamed_weights) from the layout before the blocks had named norms: a stack was
    the model's ModuleList ``<old_stack>.<i>`` whose norms were ``residuals.<k>.norm`` by position, and its final
    norm the model's ``<old_norm>``."""
    sublayers = ["self_attention", "cross_attention", "feed_forward"] if cross else ["self_attention", "feed_forward"]
    norms = [
        (rf"^{old_stack}\.(\d+)\.residuals\.{k}\.norm\.", rf"{stack}.layers.\1.{name}_norm.")
        for k, name in enumerate(sublayers)
    ]
    return norms + [(rf"^{old_stack}\.(\d+)\.", rf"{stack}.layers.\1."), (rf"^{old_norm}\.", rf"{stack}.norm.")]
