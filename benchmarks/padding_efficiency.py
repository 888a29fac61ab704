"""How much of each translation batch is real tokens, how fast batches load, how long setup() takes.

On Multi30k en-fr train (BPE 8k, joint), with a ~4000-token budget per batch:
  - non-pad share of source and target tokens for BucketBatchSampler against two
    references built here: random batching (shuffle, then fill to the budget) and
    bucketing on target length alone;
  - DataLoader batches/s alone against the batches/s a small Transformer (torch's
    nn.Transformer, d 256, 3+3 layers, FFN 1024) trains on: loading must never be the bottleneck;
  - the first setup() (tokenizer training + tokenization, empty cache) and the second (cache).

    python benchmarks/padding_efficiency.py [--quick]

Reads Multi30k from $ZOO_DATA_DIR/multi30k (or the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch
from torch import nn

from datamodules.translation_datamodule import TranslationDataModule

BUDGET = 4000  # max_tokens: padded tokens on the longer side of a batch (fairseq's --max-tokens)


def greedy_fill(order, src, tgt, budget=BUDGET):
    batches, current, longest = [], [], 0
    for i in order:
        grown = max(longest, src[i], tgt[i])
        if current and (len(current) + 1) * grown > budget:
            batches.append(current)
            current, grown = [], max(src[i], tgt[i])
        current.append(i)
        longest = grown
    return batches + [current]


def efficiency(batches, src, tgt) -> dict:
    real_s = sum(src[i] for b in batches for i in b)
    real_t = sum(tgt[i] for b in batches for i in b)
    pad_s = sum(len(b) * max(src[i] for i in b) for b in batches)
    pad_t = sum(len(b) * max(tgt[i] for i in b) for b in batches)
    return {
        "source": real_s / pad_s,
        "target": real_t / pad_t,
        "both": (real_s + real_t) / (pad_s + pad_t),
        "batches": len(batches),
        "target_tokens_per_batch": real_t / len(batches),
    }


def transformer_steps_per_s(dm, n_batches: int) -> float:
    torch.manual_seed(0)
    vocab = dm.tgt_vocab_size
    embed = nn.Embedding(vocab, 256)
    model = nn.Transformer(256, 4, 3, 3, 1024, dropout=0.1, batch_first=True)
    head = nn.Linear(256, vocab)
    params = [*embed.parameters(), *model.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    batches = [b for _, b in zip(range(n_batches + 1), dm.train_dataloader())]
    times = []
    for batch in batches:
        start = time.perf_counter()
        causal = nn.Transformer.generate_square_subsequent_mask(batch["tgt_in"].shape[1])
        out = model(
            embed(batch["src"]),
            embed(batch["tgt_in"]),
            tgt_mask=causal,
            src_key_padding_mask=batch["src_pad_mask"],
            tgt_key_padding_mask=batch["tgt_pad_mask"],
            memory_key_padding_mask=batch["src_pad_mask"],
        )
        loss = nn.functional.cross_entropy(head(out).flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return 1 / statistics.median(times[1:])  # the first step warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        os.environ["ZOO_CACHE_DIR"] = cache  # an empty cache, so the first setup is really the first
        setup_seconds = []
        for _ in range(2):
            start = time.perf_counter()
            dm = TranslationDataModule("multi30k", pair="en-fr", vocab_size=8000, max_tokens=BUDGET)
            dm.setup("fit")
            setup_seconds.append(time.perf_counter() - start)
            print(f"setup(): {setup_seconds[-1]:.2f} s ({', '.join(f'{k} {v}' for k, v in dm.cache_report.items())})")

        train = dm.datasets["train"]
        src = [n + 1 for n in train["src_len"]]  # as batched: + <eos>
        tgt = [n + 1 for n in train["tgt_len"]]  # + <bos>/<eos>
        ours = [b for b in dm.sampler("train")]
        random_order = torch.randperm(len(src), generator=torch.Generator().manual_seed(0)).tolist()
        target_only = sorted(random_order, key=lambda i: tgt[i])
        results = {
            "BucketBatchSampler": efficiency(ours, src, tgt),
            "random batching": efficiency(greedy_fill(random_order, src, tgt), src, tgt),
            "bucket on target only": efficiency(greedy_fill(target_only, src, tgt), src, tgt),
        }
        print(f"\nMulti30k en-fr train, {len(src)} pairs, BPE 8k joint, budget {BUDGET} padded tokens per side")
        print(f"{'batching':<24}{'source':>8}{'target':>8}{'both':>8}{'batches':>9}{'tgt tok/batch':>15}")
        for name, r in results.items():
            print(
                f"{name:<24}{r['source']:>8.3f}{r['target']:>8.3f}{r['both']:>8.3f}{r['batches']:>9}"
                f"{r['target_tokens_per_batch']:>15.0f}"
            )

        epochs = 1 if args.quick else 5
        start = time.perf_counter()
        loaded = sum(1 for _ in range(epochs) for _ in dm.train_dataloader())
        load_rate = loaded / (time.perf_counter() - start)
        train_rate = transformer_steps_per_s(dm, 4 if args.quick else 12)
        print(
            f"\nDataLoader alone: {load_rate:.1f} batches/s; a small Transformer trains on {train_rate:.2f} batches/s "
            f"-> loading is {load_rate / train_rate:.0f}x faster than consumption"
        )

    print(
        json.dumps(
            {
                "benchmark": "padding_efficiency",
                "quick": args.quick,
                "bucket_both": round(results["BucketBatchSampler"]["both"], 4),
                "bucket_source": round(results["BucketBatchSampler"]["source"], 4),
                "bucket_target": round(results["BucketBatchSampler"]["target"], 4),
                "random_both": round(results["random batching"]["both"], 4),
                "target_only_both": round(results["bucket on target only"]["both"], 4),
                "loader_batches_per_s": round(load_rate, 1),
                "transformer_batches_per_s": round(train_rate, 2),
                "first_setup_s": round(setup_seconds[0], 2),
                "second_setup_s": round(setup_seconds[1], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
