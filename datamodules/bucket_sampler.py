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

The cut is greedy, so each batch depends on where the previous one ended, but not each
example: for one batch at a time, numpy evaluates the closing rule at every candidate end
at once (running maxima and sums over a window of the order), and the batch ends at the
first end where it holds. A few numpy calls per batch instead of Python work per example:
2.9M pairs are cut in well under a second (benchmarks/data_scale.py). The batches are kept
as one array of example indices and the offsets where each batch starts.

Distributed: each of ``num_replicas`` ranks takes every num_replicas-th batch of the
shuffled order, so ranks get disjoint batches. With ``even_shards`` (training: every rank
must step together) the order is first trimmed to a multiple of num_replicas, so all get
the same number (the few trimmed batches differ per epoch); without (evaluation) every
batch is kept and ranks may differ by one. Lightning does not shard a custom batch
sampler, hence this is done here; train with ``Trainer(use_distributed_sampler=False)``.

Every pass over the sampler is the next epoch (``set_epoch`` may name it instead). Lightning
calls ``set_epoch`` on a DataLoader's sampler, never on its batch sampler, and stops asking
for batches after ``len()`` of them, so counting on either left every epoch in the order of
epoch 0.

Resuming, on any number of processes: ranks step together, so when each has trained k
batches of an epoch, the first ``k * num_replicas`` batches of its shuffled order are done,
whichever rank had them. ``state_dict`` records that global count (``done``); a resumed pass
deals the rest of the order, ``order[done:]``, to this run's ranks as a fresh epoch would
be dealt (trimmed to a multiple of their number), so across the interruption no batch is
seen twice and none is skipped, on the same number of processes or another. A pass that
starts there yields ``batches_left()`` batches; ``len()`` stays the whole epoch's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from datamodules.training_position import dealt

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
        self.start = 0  # batches of this epoch's order done before this pass (by a run it resumes)
        self.consumed = 0  # batches this rank handed out in this pass
        self._next_epoch = 0  # the epoch of the next pass: one more each pass, or set_epoch / load_state_dict's
        self._resume_at = 0  # set by load_state_dict: where in its epoch's order the next pass starts
        src = np.asarray(src_lengths, dtype=np.int32)  # (int32: at 29M pairs every copy is 116 MB, not 232)
        tgt = np.asarray(tgt_lengths, dtype=np.int32)
        self.oversized = int((np.maximum(src, tgt) > max_tokens).sum()) if max_tokens is not None else 0
        self.examples = self._length_order(src, tgt)  # example indices, batch after batch
        self.bounds = cut_batches(src[self.examples], tgt[self.examples], max_tokens, batch_size)

    def _length_order(self, src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(src), generator=generator)  # random tie-breaks
        src_t, tgt_t = torch.from_numpy(src), torch.from_numpy(tgt)
        snake = torch.where(tgt_t % 2 == 0, src_t, -src_t)  # source ascending, descending, ... per target length
        for key in (snake, tgt_t):  # stable sorts: by target length, then snake source length
            order = order[torch.sort(key[order], stable=True).indices]
        return order.to(torch.int32).numpy()

    @property
    def num_batches(self) -> int:
        return len(self.bounds) - 1

    def batch(self, i: int) -> list[int]:
        """The example indices of batch ``i`` (in the fixed, unshuffled numbering)."""
        return self.examples[self.bounds[i] : self.bounds[i + 1]].tolist()

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next pass (which decides its shuffle); without a call, passes count up."""
        self._next_epoch = epoch

    def _dealt(self, remaining: int) -> range:
        return dealt(remaining, self.rank, self.num_replicas, self.even_shards)

    def _rank_batches(self) -> list[int]:
        order = np.arange(self.num_batches)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_batches, generator=generator).numpy()
        rest = order[self.start :]
        mine = self._dealt(len(rest))
        return rest[mine.start : mine.stop : mine.step].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: none of this runs until the first batch is asked for, so an iterator made and
        # dropped (a check that the loader is iterable) starts no epoch.
        self.epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        self.start, self._resume_at, self.consumed = self._resume_at, 0, 0
        for i in self._rank_batches():
            self.consumed += 1
            yield self.batch(i)

    def __len__(self) -> int:
        """This rank's batches in a whole epoch."""
        return len(self._dealt(self.num_batches))

    def batches_left(self) -> int:
        """This rank's batches in the next pass: the whole epoch, or what a resumed one has left."""
        return len(self._dealt(self.num_batches - self._resume_at))

    def done(self, rank_batches: int) -> int:
        """Batches of this pass's epoch done by all ranks once each has trained ``rank_batches`` of the epoch
        (counting, as Lightning does, the ``len() - batches_left()`` a resumed pass starts after)."""
        first = len(self) - len(self._dealt(self.num_batches - self.start))
        return self.start + (rank_batches - first) * self.num_replicas

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "done": self.start + self.consumed * self.num_replicas, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, this sampler has seed {self.seed}")
        if not 0 <= state["done"] <= self.num_batches:
            raise ValueError(f"sampler state has {state['done']} batches done of an epoch of {self.num_batches}")
        self._next_epoch, self._resume_at = state["epoch"], state["done"]


def cut_batches(src: np.ndarray, tgt: np.ndarray, max_tokens: int | None, batch_size: int | None) -> np.ndarray:
    """Where each batch starts in the length-sorted order (and, last, its end): the greedy cut of the module
    docstring, one batch at a time. ``src``/``tgt``: the lengths in that order."""
    n, bounds, start, window = len(src), [0], 0, 64
    while start < n:
        end = min(n, start + window)
        close = _closes(src[start:end], tgt[start:end], max_tokens, batch_size)
        if close.size and close.any():
            size = int(close.argmax()) + 1  # the first example that closes the batch before it
        elif end == n:
            size = n - start  # the last batch
        else:
            window *= 2  # no end within the window: look further
            continue
        start += size
        bounds.append(start)
        window = max(64, 2 * size)
    return np.asarray(bounds, dtype=np.int64)


def _closes(src: np.ndarray, tgt: np.ndarray, max_tokens: int | None, batch_size: int | None) -> np.ndarray:
    """For a batch starting at ``src[0]``: whether example p (p >= 1) closes it with the p before it."""
    longest_src, longest_tgt = np.maximum.accumulate(src), np.maximum.accumulate(tgt)
    real = np.cumsum(src + tgt)  # real tokens of the batch up to and including example p
    p = np.arange(1, len(src))  # examples already in the batch when example p comes
    grown_src, grown_tgt = longest_src[1:], longest_tgt[1:]
    if batch_size:
        full, fill = p + 1 > batch_size, p / batch_size
    else:
        full = (p + 1) * np.maximum(grown_src, grown_tgt) > max_tokens
        fill = p * np.maximum(longest_src[:-1], longest_tgt[:-1]) / max_tokens
    padding = 1 - real[1:] / ((p + 1) * (grown_src + grown_tgt))
    return full | ((fill >= MIN_FILL) & (padding > MAX_PADDING))
