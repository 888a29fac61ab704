"""Transformer decoding speed: the zoo's cached greedy and beam-5 decoding against Hugging Face `generate`.

Models: ``zoo.Transformer`` and ``transformers.MarianMTModel`` of the same sizes (d 256, 3+3
layers, 4 heads, FFN 1024, 8k joint vocabulary), random weights: speed does not depend on
them, and every output is forced to the same length (min = max = N new tokens) so both do
the same work. Sources: the first sentences of Multi30k's test set, tokenized by the
shared DataModule. Contenders, alternated in rounds in one process:
  - zoo greedy / zoo beam 5: ``Transformer.generate`` (key/value cache, cross-attention
    keys/values once per source, finished inputs leave the batch);
  - hf greedy / hf beam 5: ``MarianMTModel.generate`` (its own key/value cache);
  - no-cache greedy: the zoo model re-running the whole prefix at every step, the cost a
    cache avoids.

    python benchmarks/transformer_decoding_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from decoding_speed import timed  # sibling scripts: the char-RNN decoding benchmark,
from transformer_throughput import SIZES, marian  # and the same sizes and Marian config

from datamodules import TranslationDataModule
from datamodules.collate import collate_pairs
from zoo import Transformer


@torch.no_grad()
def no_cache_greedy(model: Transformer, src, src_pad_mask, new_tokens: int) -> torch.Tensor:
    memory = model.encode(src, src_pad_mask)
    tokens = torch.full((len(src), 1), model.bos_id)
    for _ in range(new_tokens):
        logits, _, _ = model.decode(tokens, model.init_state(memory, src_pad_mask, len(src)))
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], 1)
    return tokens[:, 1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    args = parser.parse_args()
    rounds, batch, new_tokens = (3, 16, 20) if args.quick else (5, 64, 30)
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    dm = TranslationDataModule(
        "multi30k", pair="en-fr", tokenizer="bpe", vocab_size=8000, joint_vocab=True, max_tokens=4000
    )
    dm.setup("test")
    test_set = dm.test_dataloader().dataset
    first = collate_pairs([test_set[i] for i in range(batch)])  # the corpus' first sentences: typical lengths
    src, mask = first["src"], first["src_pad_mask"]
    ours = Transformer(dm.src_vocab_size, dm.tgt_vocab_size, **SIZES).eval()
    hf = marian(dm).eval()
    hf_inputs = dict(input_ids=src, attention_mask=(~mask).long(), max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    same_length = dict(min_len=new_tokens, max_len=new_tokens)

    # The cache changes nothing but speed: cached greedy equals re-running the prefix.
    cached = torch.stack([h[0].tokens for h in ours.generate(src[:4], mask[:4], strategy="greedy", **same_length)])
    assert torch.equal(cached, no_cache_greedy(ours, src[:4], mask[:4], new_tokens))

    contenders = {
        "zoo greedy": lambda: ours.generate(src, mask, strategy="greedy", **same_length),
        "hf greedy": lambda: hf.generate(**hf_inputs, num_beams=1, do_sample=False),
        "zoo beam 5": lambda: ours.generate(src, mask, strategy="beam", beam_size=5, **same_length),
        "hf beam 5": lambda: hf.generate(**hf_inputs, num_beams=5, do_sample=False),
        "no-cache greedy": lambda: no_cache_greedy(ours, src, mask, new_tokens),
    }
    for fn in contenders.values():  # warm-up
        fn()
    rows = []
    for r in range(rounds):
        names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        rows.append({name: batch / timed(contenders[name]) for name in names})
        print(f"round {r}: " + "  ".join(f"{n} {rows[-1][n]:6.1f}" for n in contenders) + "  sentences/s")

    print()
    print(f"{batch} sources ({int((~mask).sum())} tokens, longest {src.shape[1]}), {new_tokens} new tokens each")
    print(f"{'contender':<18}{'median sent/s':>14}{'tokens/s':>10}{'ratio':>22}")
    summary = {"benchmark": "transformer_decoding_speed", "batch": batch, "new_tokens": new_tokens, "quick": args.quick}
    pairs = {"zoo greedy": "hf greedy", "zoo beam 5": "hf beam 5", "no-cache greedy": "zoo greedy"}
    for name in contenders:
        speed = statistics.median(row[name] for row in rows)
        ratio = ""
        if name in pairs:
            value = statistics.median(row[name] / row[pairs[name]] for row in rows)
            ratio = f"{value:.2f}x {pairs[name]}"
            summary[f"{name.replace(' ', '_')}_to_{pairs[name].replace(' ', '_')}"] = round(value, 3)
        print(f"{name:<18}{speed:>14.1f}{speed * new_tokens:>10.0f}{ratio:>22}")
        summary[f"{name.replace(' ', '_')}_sentences_per_s"] = round(speed, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
