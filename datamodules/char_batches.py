"""How a token sequence becomes (input, target) batches for a language model.

``StreamBatches`` (stateful training): the sequence is cut into ``batch_size`` contiguous
streams; batch t holds window t of every stream, so row i of batch t+1 continues row i
of batch t and a carried hidden state sees unbroken text. Under DDP there are
``batch_size * world_size`` streams and each rank owns its own ``batch_size`` of them.
It is an IterableDataset so that Lightning never injects a sampler that would reorder it.

``Windows`` (stateless training): non-overlapping windows of ``seq_len``; with
``random_offset`` each window starts at a random point within its slot, so an epoch sees
fresh cuts of the text. A map-style dataset: shuffle it, and Lightning's distributed
sampler gives each rank disjoint windows.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, IterableDataset

from datamodules.sources import CorpusError


class StreamBatches(IterableDataset):
    def __init__(self, tokens: torch.Tensor, batch_size: int, seq_len: int, rank: int = 0, world_size: int = 1):
        streams = batch_size * world_size
        stream_len = len(tokens) // streams
        if stream_len < seq_len + 1:
            per_rank = f" on each of {world_size} ranks" if world_size > 1 else ""
            raise CorpusError(
                f"{len(tokens)} tokens are too few for stateful batches: {streams} streams{per_rank} x "
                f"(seq_len {seq_len} + 1) = {streams * (seq_len + 1)} tokens are needed. "
                f"Fix: lower batch_size or seq_len, or use a longer corpus."
            )
        rows = tokens[: streams * stream_len].view(streams, stream_len)
        self.streams = rows[rank * batch_size : (rank + 1) * batch_size]  # (B, stream_len)
        self.seq_len = seq_len
        self.resume_at = 0  # the first window of the next pass (set for a mid-epoch resume, used once)

    def __len__(self) -> int:
        return (self.streams.shape[1] - 1) // self.seq_len

    def __iter__(self):
        T = self.seq_len
        start, self.resume_at = self.resume_at, 0
        for t in range(start, len(self)):
            window = self.streams[:, t * T : (t + 1) * T + 1]  # (B, T+1)
            yield window[:, :-1], window[:, 1:]


class Windows(Dataset):
    def __init__(self, tokens: torch.Tensor, seq_len: int, random_offset: bool):
        if len(tokens) < seq_len + 1:
            raise CorpusError(
                f"{len(tokens)} tokens are too few for one window of seq_len {seq_len} + 1. "
                f"Fix: lower seq_len or use a longer corpus."
            )
        self.tokens, self.seq_len, self.random_offset = tokens, seq_len, random_offset

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.seq_len

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        T = self.seq_len
        start = k * T
        if self.random_offset:
            start = min(start + int(torch.randint(T, ())), len(self.tokens) - T - 1)
        window = self.tokens[start : start + T + 1]
        return window[:-1], window[1:]
