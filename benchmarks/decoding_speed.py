"""Decoding speed of the shared mixin on a char-RNN: greedy and beam 5, against plain references.

Model: CharRNN 2x512 LSTM (random weights: speed does not depend on them), 65 characters,
no end token, so every sequence runs to its full length. Contenders, alternated in rounds
in one process:
  - greedy: ``generate(strategy="greedy")`` on a batch vs a plain hand-written loop calling
    the LSTM directly (the floor any wrapper adds to);
  - beam 5: batched ``generate(strategy="beam")`` (B*5 rows as one program) vs the same
    beam search run one input at a time (what a per-sentence loop costs).
The Transformer against Hugging Face `generate` is added when the Transformer lands.

    python benchmarks/decoding_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from zoo import CharRNN


@torch.no_grad()
def plain_greedy(model: CharRNN, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    x = model.embedding(prompt)
    out, (h, c) = model.rnn(x)
    token = model.output(out[:, -1]).argmax(-1)
    generated = [token]
    for _ in range(new_tokens - 1):
        out, (h, c) = model.rnn(model.embedding(token[:, None]), (h, c))
        token = model.output(out[:, -1]).argmax(-1)
        generated.append(token)
    return torch.stack(generated, 1)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    args = parser.parse_args()
    rounds, batch, new_tokens, beam_batch = (3, 32, 60, 8) if args.quick else (5, 64, 200, 16)
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    vocab = "".join(chr(c) for c in range(32, 97))
    model = CharRNN(len(vocab), vocab, hidden_size=512, num_layers=2).eval()
    prompt = torch.randint(len(vocab), (batch, 10))
    beam_prompt = prompt[:beam_batch]

    # Same greedy output from both: the mixin adds no behaviour, only bookkeeping.
    ours = model.generate(prompt=prompt[:4], max_len=30, strategy="greedy")
    assert [h[0].tokens.tolist() for h in ours] == plain_greedy(model, prompt[:4], 30).tolist()

    contenders = {
        "greedy: mixin": lambda: model.generate(prompt=prompt, max_len=new_tokens, strategy="greedy"),
        "greedy: plain loop": lambda: plain_greedy(model, prompt, new_tokens),
        "beam 5: batched": lambda: model.generate(prompt=beam_prompt, max_len=new_tokens, strategy="beam", beam_size=5),
        "beam 5: one input at a time": lambda: [
            model.generate(prompt=beam_prompt[i : i + 1], max_len=new_tokens, strategy="beam", beam_size=5)
            for i in range(beam_batch)
        ],
    }
    sequences = {
        "greedy: mixin": batch,
        "greedy: plain loop": batch,
        "beam 5: batched": beam_batch,
        "beam 5: one input at a time": beam_batch,
    }
    seconds = {name: [] for name in contenders}
    for r in range(rounds):
        names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in names:
            seconds[name].append(timed(contenders[name]))

    print(
        f"CharRNN 2x512 LSTM, {new_tokens} new tokens per sequence, greedy batch {batch}, beam batch {beam_batch}; "
        f"median of {rounds} alternating rounds"
    )
    print(f"{'contender':<30}{'sequences/s':>13}{'tokens/s':>11}")
    rate = {}
    for name, times in seconds.items():
        rate[name] = sequences[name] / statistics.median(times)
        print(f"{name:<30}{rate[name]:>13.1f}{rate[name] * new_tokens:>11.0f}")
    greedy_ratio = rate["greedy: mixin"] / rate["greedy: plain loop"]
    beam_ratio = rate["beam 5: batched"] / rate["beam 5: one input at a time"]
    print(f"greedy mixin / plain loop: {greedy_ratio:.2f}x   batched beam / one at a time: {beam_ratio:.2f}x")
    print(
        json.dumps(
            {
                "benchmark": "decoding_speed",
                "quick": args.quick,
                "new_tokens": new_tokens,
                "greedy_sequences_per_s": round(rate["greedy: mixin"], 1),
                "greedy_tokens_per_s": round(rate["greedy: mixin"] * new_tokens),
                "beam5_sequences_per_s": round(rate["beam 5: batched"], 2),
                "beam5_tokens_per_s": round(rate["beam 5: batched"] * new_tokens),
                "greedy_vs_plain": round(greedy_ratio, 3),
                "batched_beam_vs_unbatched": round(beam_ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
