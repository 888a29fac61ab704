"""BucketBatchSampler: complete, within budget, disjoint and balanced across ranks, deterministic, resumable."""

import pytest
import torch

from datamodules.bucket_sampler import BucketBatchSampler


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
        all_batches = ranks[0].batches
        assert len(seen[0] | seen[1]) >= len(src) - max(map(len, all_batches))  # at most one batch trimmed


@pytest.mark.parametrize("replicas", [2, 3])
def test_uneven_shards_for_evaluation_cover_every_example_once(lengths, replicas):
    src, tgt = lengths
    ranks = [
        BucketBatchSampler(src, tgt, max_tokens=600, shuffle=False, num_replicas=replicas, rank=r, even_shards=False)
        for r in range(replicas)
    ]
    per_rank = [list(sampler) for sampler in ranks]
    assert [len(batches) for batches in per_rank] == [len(sampler) for sampler in ranks]
    assert sum(map(len, per_rank)) == len(ranks[0].batches)  # nothing trimmed
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
