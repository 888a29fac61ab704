"""BucketBatchSampler: complete, within budget, disjoint and balanced across ranks, deterministic, resumable."""

import numpy as np
import pytest
import torch

from datamodules.bucket_sampler import MAX_PADDING, MIN_FILL, BucketBatchSampler


@pytest.fixture
def lengths():
    generator = torch.Generator().manual_seed(0)
    src = torch.randint(2, 40, (3000,), generator=generator)
    tgt = (src + torch.randint(-3, 4, (3000,), generator=generator)).clamp(min=2)
    return src.tolist(), tgt.tolist()


def cost(batch, src, tgt):
    return len(batch) * max(max(src[i] for i in batch), max(tgt[i] for i in batch))


def test_every_example_once_per_epoch_within_the_budget(lengths):
    src, tgt = lengths
    sampler = BucketBatchSampler(src, tgt, max_tokens=500, seed=1)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(range(len(src)))
        assert all(cost(b, src, tgt) <= 500 for b in batches)
    assert sampler.oversized == 0


def test_an_oversized_example_gets_a_batch_of_its_own_and_is_counted():
    src, tgt = [5, 5, 300, 5, 6], [5, 6, 4, 5, 6]
    sampler = BucketBatchSampler(src, tgt, max_tokens=100)
    batches = list(sampler)
    assert [2] in batches and sampler.oversized == 1
    assert all(cost(b, src, tgt) <= 100 for b in batches if b != [2])


def test_batches_group_similar_lengths_on_both_sides(lengths):
    src, tgt = lengths
    batches = list(BucketBatchSampler(src, tgt, max_tokens=2000))
    real = sum(src[i] + tgt[i] for b in batches for i in b)
    padded = sum(len(b) * (max(src[i] for i in b) + max(tgt[i] for i in b)) for b in batches)
    assert real / padded > 0.9  # random batching of these lengths: about 0.55


def test_two_ranks_get_disjoint_batches_of_equal_number(lengths):
    src, tgt = lengths
    ranks = [BucketBatchSampler(src, tgt, max_tokens=600, seed=3, num_replicas=2, rank=r) for r in range(2)]
    for epoch in range(3):
        per_rank = []
        for sampler in ranks:
            sampler.set_epoch(epoch)
            per_rank.append(list(sampler))
        assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0])
        seen = [{i for b in batches for i in b} for batches in per_rank]
        assert not seen[0] & seen[1]
        assert len(seen[0] | seen[1]) >= len(src) - max(np.diff(ranks[0].bounds))  # at most one batch trimmed


@pytest.mark.parametrize("replicas", [2, 3])
def test_uneven_shards_for_evaluation_cover_every_example_once(lengths, replicas):
    src, tgt = lengths
    ranks = [
        BucketBatchSampler(src, tgt, max_tokens=600, shuffle=False, num_replicas=replicas, rank=r, even_shards=False)
        for r in range(replicas)
    ]
    per_rank = [list(sampler) for sampler in ranks]
    assert [len(batches) for batches in per_rank] == [len(sampler) for sampler in ranks]
    assert sum(map(len, per_rank)) == ranks[0].num_batches  # nothing trimmed
    seen = sorted(i for batches in per_rank for b in batches for i in b)
    assert seen == list(range(len(src)))


def test_order_is_deterministic_per_seed_and_epoch_and_shuffled_across_epochs(lengths):
    src, tgt = lengths
    a, b = (BucketBatchSampler(src, tgt, max_tokens=800, seed=7) for _ in range(2))
    a.set_epoch(4), b.set_epoch(4)
    epoch4 = list(a)
    assert epoch4 == list(b)
    a.set_epoch(5)
    epoch5 = list(a)
    assert epoch5 != epoch4 and sorted(epoch5) == sorted(epoch4)  # the same batches in a new order


def test_state_dict_resumes_mid_epoch(lengths):
    src, tgt = lengths
    sampler = BucketBatchSampler(src, tgt, max_tokens=800, seed=2)
    sampler.set_epoch(1)
    iterator = iter(sampler)
    seen = [next(iterator) for _ in range(5)]
    state = sampler.state_dict()
    rest = list(iterator)

    resumed = BucketBatchSampler(src, tgt, max_tokens=800, seed=2)
    resumed.load_state_dict(state)
    assert list(resumed) == rest
    fresh = BucketBatchSampler(src, tgt, max_tokens=800, seed=2)
    fresh.set_epoch(1)
    assert seen + rest == list(fresh)
    fresh.set_epoch(2)
    assert list(resumed) == list(fresh)  # the next pass is epoch 2, whole again, with no set_epoch call


def test_each_pass_is_a_new_epoch_without_set_epoch(lengths):
    """Lightning never calls set_epoch on a batch sampler, and stops after len() batches: each pass must
    reshuffle anyway, as an explicitly numbered epoch would."""
    src, tgt = lengths
    sampler, numbered = (BucketBatchSampler(src, tgt, max_tokens=800, seed=3) for _ in range(2))
    passes = []
    for epoch in range(3):
        iterator = iter(sampler)
        passes.append([next(iterator) for _ in range(len(sampler))])  # asked for len() batches, as Lightning does
        iter(sampler)  # an iterator made and dropped starts no epoch
        numbered.set_epoch(epoch)
        assert passes[-1] == list(numbered)
    assert len({str(batches) for batches in passes}) == 3  # three different orders (0 against 2 as well)


def test_sentence_count_batches_and_bad_arguments(lengths):
    src, tgt = lengths
    batches = list(BucketBatchSampler(src, tgt, batch_size=32, shuffle=False))
    assert max(map(len, batches)) == 32 and sum(map(len, batches)) == len(src)
    with pytest.raises(ValueError, match="exactly one"):
        BucketBatchSampler(src, tgt)
    with pytest.raises(ValueError, match="rank"):
        BucketBatchSampler(src, tgt, batch_size=4, num_replicas=2, rank=2)


def greedy_cut(src, tgt, max_tokens=None, batch_size=None):
    """The module docstring's rule, one example at a time: where each batch ends."""
    ends, longest_src, longest_tgt, real, n = [], 0, 0, 0, 0
    for i, (s, t) in enumerate(zip(src, tgt)):
        grown_src, grown_tgt = max(longest_src, s), max(longest_tgt, t)
        if batch_size:
            full, fill = n + 1 > batch_size, n / batch_size
        else:
            full, fill = (
                (n + 1) * max(grown_src, grown_tgt) > max_tokens,
                n * max(longest_src, longest_tgt) / max_tokens,
            )
        padding = 1 - (real + s + t) / ((n + 1) * (grown_src + grown_tgt))
        if n and (full or (fill >= MIN_FILL and padding > MAX_PADDING)):
            ends.append(i)
            n, real, grown_src, grown_tgt = 0, 0, s, t
        n, longest_src, longest_tgt, real = n + 1, grown_src, grown_tgt, real + s + t
    return ends + [len(src)]


@pytest.mark.parametrize("seed", range(6))
def test_the_vectorized_cut_equals_the_greedy_rule_example_by_example(seed):
    generator = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 4000, (), generator=generator))
    src = torch.randint(1, 80, (n,), generator=generator)
    tgt = (src + torch.randint(-6, 7, (n,), generator=generator)).clamp(min=1)
    src[:: max(1, n // 3)] = 700  # a few examples over any budget below
    budget = {"batch_size": 1 + seed * 20} if seed % 2 else {"max_tokens": 100 + seed * 400}
    sampler = BucketBatchSampler(src.tolist(), tgt.tolist(), seed=seed, **budget)
    order = sampler.examples
    assert sorted(order.tolist()) == list(range(n))
    assert sampler.bounds[1:].tolist() == greedy_cut(src[order].tolist(), tgt[order].tolist(), **budget)


@pytest.mark.parametrize(("before", "after"), [(2, 1), (2, 4), (1, 3), (4, 2), (3, 3)])
def test_a_resumed_epoch_on_another_number_of_ranks_sees_every_batch_once(lengths, before, after):
    """Stopped after k lockstep batches on `before` ranks, resumed from rank 0's state on `after`: the
    epoch's batches are each trained once, except the fewer than `after` a trimmed epoch leaves out."""
    src, tgt = lengths

    def ranks(world):
        return [BucketBatchSampler(src, tgt, max_tokens=300, seed=5, num_replicas=world, rank=r) for r in range(world)]

    first = ranks(before)
    for sampler in first:
        sampler.set_epoch(3)
    iterators = [iter(sampler) for sampler in first]
    k = len(first[0]) // 3
    seen = [next(iterator) for _ in range(k) for iterator in iterators]
    state = first[0].state_dict()
    assert state["done"] == first[0].done(k) == k * before

    second = ranks(after)
    for sampler in second:
        sampler.load_state_dict(state)
    left = [sampler.batches_left() for sampler in second]
    rest = [list(sampler) for sampler in second]
    assert [len(r) for r in rest] == left and len(set(left)) == 1  # lockstep again
    # One more batch each after the resumed pass's first (Lightning's count: len - left) is `after` more done.
    assert [s.done(len(s) - n + 1) for s, n in zip(second, left)] == [k * before + after] * after
    seen += [batch for r in rest for batch in r]

    examples = [i for batch in seen for i in batch]
    assert len(examples) == len(set(examples))  # no example twice
    left_out = first[0].num_batches - len(seen)
    assert 0 <= left_out < after
    assert all(s.epoch == 3 for s in second)
    sizes = np.diff(first[0].bounds)
    assert len(examples) >= len(src) - left_out * sizes.max()
