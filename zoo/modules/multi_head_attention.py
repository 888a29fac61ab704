"""Multi-head attention on torch's scaled_dot_product_attention, with a key/value cache for decoding."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from zoo.modules.compute_types import cpu_flags

# The fewest rows from which a decoding step attends with _attend_one_query: below them the fused kernel's one call
# beats its seven small operators. Measured end to end on a 2-core AVX512-BF16 EPYC (BENCHMARKS.md, "Decoding, fourth
# measurement"): in bf16 from 32 rows (greedy and beam gain), in fp32 (float32 and int8 models) only beam search's
# hundreds of rows gain, greedy's 64 and fewer lost 1-4%. On a CPU with AMX, oneDNN's bf16 batched products pay
# tens of microseconds a call and the fused kernel won at every size (0.89x greedy, 0.95x beam end to end with the
# own path: BENCHMARKS.md, "Packed bf16 weights"), so bf16 keeps the kernel there.
ONE_QUERY_MIN_ROWS = {torch.bfloat16: math.inf if "amx_bf16" in cpu_flags() else 32, torch.float32: 128}


def future_mask(T: int, S: int, device: torch.device) -> torch.Tensor:
    """(T, S) bool, True where a query may not look: query t sits at position S - T + t (earlier positions may
    come from the key/value cache), so it sees keys 0 .. S - T + t."""
    return torch.ones(T, S, dtype=torch.bool, device=device).triu(S - T + 1)


class MultiHeadAttention(nn.Module):
    """No dropout on the attention weights, as in Vaswani et al. (see transformer_layers)."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        if d_model % heads:
            raise ValueError(
                f"d_model {d_model} is not divisible by {heads} heads. Fix: choose heads that divide d_model."
            )
        self.heads = heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        return x.view(B, T, self.heads, D // self.heads).transpose(1, 2)  # (B, H, T, D/H)

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, D) -> keys and values (B, H, S, D/H); for cross-attention, once per source."""
        k, v = self.key_value(source).chunk(2, dim=-1)
        return self.split_heads(k), self.split_heads(v)

    def forward(
        self,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        key_pad_mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        """x (B, T, D) attends to keys/values (B, H, S, D/H); pads (B, S) and, if causal, the future are masked."""
        B, T, D = x.shape
        q = self.split_heads(self.query(x))  # (B, H, T, D/H)
        fp32_attention = q.device.type == "cpu" and torch.is_autocast_enabled("cpu") and torch.is_grad_enabled()
        if fp32_attention:
            # Training under CPU bf16 autocast attends in fp32: torch's CPU flash-attention backward is 8x slower
            # in bf16 than in fp32 (BENCHMARKS.md, "bf16 on the CPU"); its forward is as fast either way. Autocast
            # is off around it too, since autocast would cast fp32 inputs of scaled_dot_product_attention back.
            q, keys, values = q.float(), keys.float(), values.float()
        with torch.autocast("cpu", enabled=False) if fp32_attention else contextlib.nullcontext():
            out = self._attend(q, keys, values, key_pad_mask, causal)
        return self.out(out.transpose(1, 2).reshape(B, T, D))

    @staticmethod
    def _attend(q, keys, values, key_pad_mask, causal: bool) -> torch.Tensor:
        """Scaled dot-product attention of q (B, H, T, D/H) over keys/values (B, H, S, D/H), masked."""
        T, S = q.shape[2], keys.shape[2]
        # A decoding step of one query per row: causal masks nothing (its own position is the newest key).
        if T == 1 and q.shape[0] >= ONE_QUERY_MIN_ROWS.get(q.dtype, 32):
            return MultiHeadAttention._attend_one_query(q, keys, values, key_pad_mask)
        if causal and key_pad_mask is None and T == S:  # a whole sequence: the fused causal kernel
            return F.scaled_dot_product_attention(q, keys, values, is_causal=True)
        allowed = None  # bool (B, 1, T, S), True where attention may look
        if key_pad_mask is not None:
            allowed = ~key_pad_mask[:, None, None, :]
        if causal and T > 1:  # (one query, the newest position, may see every key)
            future = future_mask(T, S, q.device)
            allowed = ~future if allowed is None else allowed & ~future
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)  # (B, H, T, D/H)

    @staticmethod
    def _attend_one_query(q, keys, values, key_pad_mask) -> torch.Tensor:
        """``_attend`` for one query per row, as two matrix products around an fp32 softmax. torch's CPU flash
        kernel is built for many queries: for one it takes 3-6x as long in bf16 (1.3-1.6x in fp32) on the shapes
        of a step of 64 to 320 rows (benchmarks/decoding_choices.py)."""
        scores = (q @ keys.transpose(-2, -1)).float() * keys.shape[-1] ** -0.5  # (B, H, 1, S)
        if key_pad_mask is not None:
            scores = scores.masked_fill(key_pad_mask[:, None, None, :], float("-inf"))
        return scores.softmax(dim=-1).to(values.dtype) @ values  # (B, H, 1, D/H)

    def weights(
        self, x: torch.Tensor, keys: torch.Tensor, key_pad_mask: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        """The attention probabilities of x (B, T, D) over keys (B, H, S, D/H), averaged over heads: (B, T, S),
        masked as ``forward`` masks them. Computed apart from ``forward``, whose fused kernel does not return
        them; for pictures, not training."""
        q = self.split_heads(self.query(x))  # (B, H, T, D/H)
        scores = q @ keys.transpose(-2, -1) / keys.shape[-1] ** 0.5  # (B, H, T, S)
        if key_pad_mask is not None:
            scores = scores.masked_fill(key_pad_mask[:, None, None, :], float("-inf"))
        if causal:
            scores = scores.masked_fill(future_mask(x.shape[1], keys.shape[2], q.device), float("-inf"))
        return scores.softmax(dim=-1).mean(dim=1)
