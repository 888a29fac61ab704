"""How a token sequence becomes (input, target) batches for a language model.

``StreamBatches`` (stateful training): the sequence is cut into ``batch_size`` contiguous
streams; batch t holds window t of every stream, so row i of batch t+1 continues row i
of batch t and a carried hidden state sees unbroken text. Under DDP there are
``batch_size * world_size`` streams and each rank owns its own ``batch_size`` of them.
It is an IterableDataset so that Lightning never injects a sampler that would reorder it.

``Windows`` (stateless training): the text cut into slots of ``seq_len``; item ``(k, offset)``
is the window starting ``offset`` characters into slot k. ``WindowSampler`` decides an
epoch: a seeded shuffle of the slots with a random offset each (training, so every epoch
sees fresh cuts of the text) or every slot once at offset 0 (evaluation), this rank's share
under DDP. Both are pure functions of (seed, epoch), so ranks agree without talking and a
resumed epoch continues exactly where it stopped.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, DistributedSampler, IterableDataset

from datamodules.sources import CorpusError
from datamodules.training_position import ceil_div, dealt


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
    def __init__(self, tokens: torch.Tensor, seq_len: int):
        if len(tokens) < seq_len + 1:
            raise CorpusError(
                f"{len(tokens)} tokens are too few for one window of seq_len {seq_len} + 1. "
                f"Fix: lower seq_len or use a longer corpus."
            )
        self.tokens, self.seq_len = tokens, seq_len

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.seq_len

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        k, offset = item
        T = self.seq_len
        start = min(k * T + offset, len(self.tokens) - T - 1)
        window = self.tokens[start : start + T + 1]
        return window[:-1], window[1:]


class WindowSampler(DistributedSampler):
    """Yields ``(slot, offset)`` items of ``Windows`` for one epoch of one rank (see the module docstring).

    Training (``shuffle``) gives every rank equally many slots (the fewer than ``world_size`` left
    over are skipped that epoch); evaluation gives each slot to exactly one rank. A DistributedSampler
    only so that Lightning, seeing one, does not wrap it in another: it shards by itself.

    Resuming: ranks take items in lockstep, so once each has ``k`` the epoch's first ``k * world_size`` are
    done. A pass after ``resume_at`` such items deals the rest of the epoch's order to this run's ranks as a
    whole epoch is dealt, on as many ranks as the run it resumes or not; ``len()`` stays the whole epoch's.
    """

    def __init__(self, windows: Windows, seed: int, shuffle: bool, rank: int = 0, world_size: int = 1):
        super().__init__(windows, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        self.num_samples = len(self._dealt(len(windows)))
        self.start = 0  # items of this epoch's order done (by all ranks) before this pass
        self.resume_at = 0  # where the next pass starts (set for a mid-epoch resume, used once)

    def _dealt(self, remaining: int) -> range:
        return dealt(remaining, self.rank, self.num_replicas, self.shuffle)

    def batches_left(self, batch_size: int) -> int:
        """This rank's batches of ``batch_size`` in the next pass."""
        return ceil_div(len(self._dealt(len(self.dataset) - self.resume_at)), batch_size)

    def done(self, rank_batches: int, batch_size: int) -> int:
        """Items of this pass's epoch done by all ranks once each has trained ``rank_batches`` full batches of
        the epoch (counting, as Lightning does, the batches a resumed pass starts after)."""
        whole = ceil_div(len(self), batch_size)
        left = ceil_div(len(self._dealt(len(self.dataset) - self.start)), batch_size)
        return self.start + (rank_batches - (whole - left)) * batch_size * self.num_replicas

    def __iter__(self):
        slots, T = len(self.dataset), self.dataset.seq_len
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(slots, generator=generator)
            offsets = torch.randint(T, (slots,), generator=generator)
        else:
            order, offsets = torch.arange(slots), torch.zeros(slots, dtype=torch.long)
        self.start, self.resume_at = self.resume_at, 0
        rest = order[self.start :]
        mine = self._dealt(len(rest))
        for k in rest[mine.start : mine.stop : mine.step].tolist():
            yield k, int(offsets[k])
        self.epoch += 1  # without Lightning's set_epoch (a plain loop), the next pass still reshuffles

    def __len__(self) -> int:
        return self.num_samples
