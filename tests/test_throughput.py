"""What the throughput monitor counts: target tokens of our batches, and FLOPs of dense parameters only."""

import torch
from torch import nn

from callbacks import sequences, target_tokens
from datamodules.collate import collate_pairs
from zoo.tasks.flops import dense_parameters


def test_batches_count_their_sequences_and_real_target_tokens():
    batch = collate_pairs([{"src_ids": [7, 8, 9], "tgt_ids": [5]}, {"src_ids": [7], "tgt_ids": [5, 6, 4, 9]}])
    assert (sequences(batch), target_tokens(batch)) == (2, 2 + 5)  # each target's tokens and its <eos>, no pads
    windows = (torch.zeros(4, 16, dtype=torch.long), torch.zeros(4, 16, dtype=torch.long))
    assert (sequences(windows), target_tokens(windows)) == (4, 64)


def test_embedding_lookups_cost_nothing_unless_the_table_is_the_output_layer():
    embedding, output = nn.Embedding(10, 4), nn.Linear(4, 10, bias=False)
    model = nn.Sequential(embedding, nn.Linear(4, 4), output)  # Linear(4, 4): 20 parameters
    assert dense_parameters(model, output) == 20 + 40
    output.weight = embedding.weight  # tied: the one table is a matmul at the output
    assert dense_parameters(model, output) == 20 + 40
    assert dense_parameters(model) == 20  # no output layer named: every table is a lookup
