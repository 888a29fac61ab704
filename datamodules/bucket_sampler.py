"""BucketBatchSampler: batches of similar-length pairs under a token budget, DDP-aware and resumable.

Examples are ordered by target length and, within one target length, by source length,
ascending and descending in turn (a snake through the (target, source) grid, so that
neighbours differ little on both sides; ties are broken by a seeded shuffle). That order
is cut greedily into batches. A batch closes when the next example would break the
budget, or, once it is half full, when the next example would raise its padding above
``MAX_PADDING`` of its tokens: bucketing on one side alone leaves ~12% padding on the
other, this keeps both near 3% (benchmarks/padding_efficiency.py). The batches are fixed;
each epoch shuffles their order (seed + epoch), never the sentences inside them.

A batch's cost is its padded size on the longer side: ``n * max(longest source, longest
target)``; with ``max_tokens`` no batch costs more, except an example that alone exceeds
the budget: it gets a batch of its own and is counted in ``oversized``.

Distributed: each of ``num_replicas`` ranks takes every num_replicas-th batch of the
shuffled order, so ranks get disjoint batches. With ``even_shards`` (training: every rank
must step together) the order is first trimmed to a multiple of num_replicas, so all get
the same number (the few trimmed batches differ per epoch); without (evaluation) every
batch is kept and ranks may differ by one. Lightning does not shard a custom batch
sampler, hence this is done here; train with ``Trainer(use_distributed_sampler=False)``.

Every pass over the sampler is the next epoch (``set_epoch`` may name it instead). Lightning
calls ``set_epoch`` on a DataLoader's sampler, never on its batch sampler, and stops asking
for batches after ``len()`` of them, so counting on either left every epoch in the order of
epoch 0. ``state_dict`` records the epoch and how many batches were handed out, so a
resumed run continues mid-epoch with the next batch, and then with the epochs after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

MAX_PADDING = 0.03  # share of a batch's padded tokens that may be padding, once it is ...
MIN_FILL = 0.5  # ... at least this full (of max_tokens or batch_size)


class BucketBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        src_lengths: Sequence[int],
        tgt_lengths: Sequence[int],
        max_tokens: int | None = None,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        even_shards: bool = True,
    ):
        if (max_tokens is None) == (batch_size is None):
            raise ValueError("give exactly one of max_tokens (a token budget) and batch_size (a sentence count)")
        if len(src_lengths) != len(tgt_lengths):
            raise ValueError(f"{len(src_lengths)} source lengths but {len(tgt_lengths)} target lengths")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.shuffle, self.seed = shuffle, seed
        self.num_replicas, self.rank, self.even_shards = num_replicas, rank, even_shards
        self.epoch = 0  # the epoch of the current (or last) pass
        self.consumed = 0  # batches of this epoch handed out so far
        self._next_epoch = 0  # the epoch of the next pass: one more each pass, or set_epoch / load_state_dict's
        self._resume_at = 0  # set by load_state_dict: where the next pass starts
        self.oversized = 0
        self.batches = self._form_batches(
            torch.as_tensor(src_lengths), torch.as_tensor(tgt_lengths), max_tokens, batch_size
        )

    def _form_batches(self, src: torch.Tensor, tgt: torch.Tensor, max_tokens, batch_size) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(src), generator=generator)  # random tie-breaks
        snake = torch.where(tgt % 2 == 0, src, -src)  # source ascending, descending, ... per target length
        for key in (snake, tgt):  # stable sorts: by target length, then snake source length
            order = order[torch.sort(key[order], stable=True).indices]
        batches, current = [], []
        longest_src = longest_tgt = real = 0
        src_list, tgt_list = src.tolist(), tgt.tolist()  # indexing a list is ~50x cheaper than a tensor
        for index in order.tolist():
            s, t = src_list[index], tgt_list[index]
            grown_src, grown_tgt = max(longest_src, s), max(longest_tgt, t)
            n = len(current) + 1
            if batch_size:
                full, fill = n > batch_size, len(current) / batch_size
            else:
                full, fill = (
                    n * max(grown_src, grown_tgt) > max_tokens,
                    len(current) * max(longest_src, longest_tgt) / max_tokens,
                )
            padding = 1 - (real + s + t) / (n * (grown_src + grown_tgt))
            if current and (full or (fill >= MIN_FILL and padding > MAX_PADDING)):
                batches.append(current)
                current, real, grown_src, grown_tgt = [], 0, s, t
            if max_tokens is not None and max(s, t) > max_tokens:
                self.oversized += 1
            current.append(index)
            longest_src, longest_tgt, real = grown_src, grown_tgt, real + s + t
        if current:
            batches.append(current)
        return batches

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next pass (which decides its shuffle); without a call, passes count up."""
        self._next_epoch = epoch

    def _rank_batches(self) -> list[list[int]]:
        order = list(range(len(self.batches)))
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.batches), generator=generator).tolist()
        usable = len(order) - len(order) % self.num_replicas if self.even_shards else len(order)
        return [self.batches[i] for i in order[self.rank : usable : self.num_replicas]]

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: none of this runs until the first batch is asked for, so an iterator made and
        # dropped (a check that the loader is iterable) starts no epoch.
        self.epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        batches = self._rank_batches()
        self.consumed, self._resume_at = self._resume_at, 0
        for batch in batches[self.consumed :]:
            self.consumed += 1
            yield batch

    def __len__(self) -> int:
        if self.even_shards:
            return len(self.batches) // self.num_replicas
        return len(range(self.rank, len(self.batches), self.num_replicas))

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "consumed": self.consumed, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, this sampler has seed {self.seed}")
        self._next_epoch, self._resume_at = state["epoch"], state["consumed"]
