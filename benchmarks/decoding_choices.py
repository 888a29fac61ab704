"""Three choices in the decoding step, each against what it replaced, A/B in one process: attention for one query
(zoo/modules/multi_head_attention.py's two matrix products around an fp32 softmax, for steps of at least the rows
the AVX512-BF16 EPYC chose, 32 in bf16 and 128 in fp32) against torch's fused `scaled_dot_product_attention`, `torch.inference_mode` against
`torch.no_grad` around `generate`, and bf16 weights packed for oneDNN once (zoo/modules/packed_linear.py) against
plain `F.linear` (which reorders them at every call; bfloat16 only, the others do not pack).

First the attention alone on the shapes of a decoding step (rows = batch x beams, 4 heads of 64, S keys), then
real translation of test_2016_flickr with the shipped translator (sorted by length into batches of 64, greedy
and beam 5), per compute type: every batch is translated by both variants, in alternating order, after one
untimed pass (oneDNN's first use of each shape), so the machine's drift falls on both alike.

    python benchmarks/decoding_choices.py [--quick]

Prints microseconds per attention call and sentences/s per variant with their ratio; the last line is JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch
import torch.nn.functional as F

import zoo
from datamodules.parallel_corpus import load_parallel
from zoo.modules.compute_types import decoding_copy
from zoo.modules.multi_head_attention import ONE_QUERY_MIN_ROWS, MultiHeadAttention
from zoo.modules.packed_linear import PackedLinear

PRETRAINED = "transformer-multi30k-en-fr"
BATCH = 64
ONE_QUERY = MultiHeadAttention._attend_one_query


def fused_kernel(q, keys, values, key_pad_mask):
    """What a decoding step ran before: torch's fused kernel with a boolean mask."""
    allowed = None if key_pad_mask is None else ~key_pad_mask[:, None, None, :]
    return F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)


# The own path from the rows the AVX512-BF16 EPYC chose (on an AMX CPU zoo/ never takes it in bf16), against
# the fused kernel at every size
EPYC_MIN_ROWS = {torch.bfloat16: 32, torch.float32: 128}


@contextlib.contextmanager
def one_query_attention(variant: str):
    chosen = dict(ONE_QUERY_MIN_ROWS)
    ONE_QUERY_MIN_ROWS.update(EPYC_MIN_ROWS)
    MultiHeadAttention._attend_one_query = staticmethod(ONE_QUERY if variant == "one-query" else fused_kernel)
    try:
        yield
    finally:
        MultiHeadAttention._attend_one_query = staticmethod(ONE_QUERY)
        ONE_QUERY_MIN_ROWS.update(chosen)


@contextlib.contextmanager
def grad_mode(variant: str):
    """generate enters torch.inference_mode itself; the no_grad variant swaps that name for the window."""
    inference_mode = torch.inference_mode
    if variant == "no_grad":
        torch.inference_mode = torch.no_grad
    try:
        yield
    finally:
        torch.inference_mode = inference_mode


PACKED = PackedLinear.forward


@contextlib.contextmanager
def weight_layout(variant: str):
    PackedLinear.forward = PACKED if variant == "packed" else torch.nn.Linear.forward
    try:
        yield
    finally:
        PackedLinear.forward = PACKED


CHOICES = {
    "attention": (("one-query", "fused kernel"), one_query_attention),
    "mode": (("inference_mode", "no_grad"), grad_mode),
    "linear": (("packed", "plain"), weight_layout),
}


def microseconds(fn, repeats: int) -> float:
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e6


def attention_alone(repeats: int) -> list[tuple]:
    rows = []
    for dtype in (torch.bfloat16, torch.float32):
        for R, S in ((8, 25), (16, 25), (32, 25), (64, 25), (320, 25), (320, 40)):
            q = torch.randn(R, 4, 1, 64, dtype=dtype)
            keys, values = torch.randn(R, 4, S, 64, dtype=dtype), torch.randn(R, 4, S, 64, dtype=dtype)
            pad = torch.rand(R, S) < 0.2
            pad[:, 0] = False
            fused = microseconds(lambda: fused_kernel(q, keys, values, pad), repeats)
            ours = microseconds(lambda: ONE_QUERY(q, keys, values, pad), repeats)
            rows.append((str(dtype).removeprefix("torch."), R, S, fused, ours))
    return rows


def translation(model, batches: list[list[str]], options: dict, choice: str, rounds: int) -> dict[str, float]:
    (first, second), context = CHOICES[choice]
    for batch in batches:  # warm-up, untimed
        for variant in (first, second):
            with context(variant):
                model.translate(batch, **options)
    seconds = {first: 0.0, second: 0.0}
    for r in range(rounds):
        for b, batch in enumerate(batches):
            for variant in (first, second) if (r + b) % 2 == 0 else (second, first):
                with context(variant):
                    start = time.perf_counter()
                    model.translate(batch, **options)
                    seconds[variant] += time.perf_counter() - start
    sentences = rounds * sum(len(batch) for batch in batches)
    return {variant: sentences / s for variant, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 sentences, 1 round (about a minute)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    test = load_parallel("multi30k", "en-fr", "test")
    sources = test.src[:256] if args.quick else test.src
    rounds = 1 if args.quick else 2
    order = sorted(sources, key=len)
    batches = [order[start : start + BATCH] for start in range(0, len(order), BATCH)]
    base = zoo.load_pretrained(PRETRAINED)
    decodings = {
        "greedy": {"strategy": "greedy"},
        "beam 5": {"strategy": "beam", "beam_size": 5, "length_penalty": 0.6},
    }
    summary = {"threads": torch.get_num_threads(), "sentences": len(sources)}

    print(f"\nattention for one query, microseconds per call ({torch.get_num_threads()} threads)")
    print(f"{'dtype':<9}{'rows':>6}{'keys':>6}{'fused kernel':>14}{'one-query':>11}{'speed-up':>10}")
    for dtype, R, S, fused, ours in attention_alone(50 if args.quick else 200):
        print(f"{dtype:<9}{R:>6}{S:>6}{fused:>14.0f}{ours:>11.0f}{fused / ours:>9.2f}x")
        summary[f"attention {dtype} {R}x{S} speed-up"] = round(fused / ours, 2)

    print(f"\ntranslation, {len(sources)} sentences x {rounds} round(s), sentences/s")
    print(f"{'choice':<10}{'compute':<10}{'decoding':<9}{'new':>15}{'sent/s':>8}{'old':>15}{'sent/s':>8}{'ratio':>9}")
    for compute_type in ("bfloat16", "float32", "int8"):
        model = decoding_copy(base, compute_type)
        for decoding, options in decodings.items():
            for choice, ((new, old), _) in CHOICES.items():
                if choice == "linear" and compute_type != "bfloat16":
                    continue
                speed = translation(model, batches, options, choice, rounds)
                ratio = speed[new] / speed[old]
                print(
                    f"{choice:<10}{compute_type:<10}{decoding:<9}{new:>15}{speed[new]:>8.1f}{old:>15}{speed[old]:>8.1f}"
                    f"{ratio:>8.3f}x"
                )
                summary[f"{choice} {compute_type} {decoding} new/old"] = round(ratio, 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
