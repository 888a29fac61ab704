"""RNN attention seq2seq training throughput: the model's own teacher-forced loss against a per-step loop.

Models of the shipped configs' sizes (GRU, embeddings 256, hidden 512, bidirectional encoder,
dropout 0.3, BPE 8k joint) on Multi30k en-fr training batches of at most 4000 tokens:
Bahdanau, Luong general with input feeding (the shipped Luong config) and without it.
Contenders, same model weights and batches, Adam 1e-3 and gradient clipping at 1.0:
  - model: ``Seq2Seq.sequence_loss``, what `zoo fit` trains with;
  - step loop: the loss from the decoding step (``decoder_step``) called once per target
    position, which is how sequence_loss worked before it got its own lean paths.
Windows alternate in one process, the order swapped every round (this machine's speed
drifts); throughput is real (non-pad) target tokens per second of forward, backward and
optimizer step; medians over windows.

    python benchmarks/seq2seq_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time

import torch
import torch.nn.functional as F

from datamodules import TranslationDataModule
from zoo import Seq2Seq

SIZES = dict(cell="gru", embedding_dim=256, hidden_size=512, bidirectional=True, dropout=0.3)
VARIANTS = {
    "bahdanau": dict(attention="bahdanau"),
    "luong, input feeding": dict(attention="general", input_feeding=True),
    "luong, no input feeding": dict(attention="general", input_feeding=False),
}


def step_loop_loss(model: Seq2Seq, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher forcing through the decoding step, one target position at a time."""
    memory = model.encode(batch["src"], batch["src_pad_mask"])
    state = model.init_state(memory, batch["src_pad_mask"], len(batch["src"]))
    features = []
    for t in range(batch["tgt_in"].shape[1]):
        step_features, state, _ = model.decoder_step(batch["tgt_in"][:, t], state)
        features.append(step_features)
    features = torch.stack(features, 1)  # (B, T, H)
    real = ~batch["tgt_pad_mask"]
    logits = model.output(model.dropout(features[real]))
    return F.cross_entropy(logits, batch["tgt_out"][real], reduction="sum"), real.sum()


def model_loss(model: Seq2Seq, batch) -> tuple[torch.Tensor, torch.Tensor]:
    return model.sequence_loss(batch)


def window(model, optimizer, loss_fn, batches) -> float:
    """Target tokens per second over ``batches`` (after one untimed batch)."""
    tokens, start = 0, None
    for i, batch in enumerate(batches):
        if i == 1:
            start = time.perf_counter()
        total, count = loss_fn(model, batch)
        optimizer.zero_grad()
        (total / count).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens += int(count) if i >= 1 else 0
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 4-batch windows (about a minute)")
    args = parser.parse_args()
    rounds, per_window = (2, 4) if args.quick else (5, 8)
    dm = TranslationDataModule("multi30k", "en-fr", tokenizer="bpe", vocab_size=8000, joint_vocab=True, max_tokens=4000)
    dm.setup("fit")
    loader = iter(dm.train_dataloader())
    batches = [next(loader) for _ in range(per_window * 2)]
    print(f"Multi30k en-fr training batches of <= 4000 tokens, threads {torch.get_num_threads()}")
    print(f"{'variant':<26}{'model tok/s':>13}{'step loop tok/s':>17}{'ratio':>8}")
    summary = {}
    for name, variant in VARIANTS.items():
        torch.manual_seed(0)
        model = Seq2Seq(dm.src_vocab_size, dm.tgt_vocab_size, **SIZES, **variant).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        rates = {"model": [], "step loop": []}
        contenders = {"model": model_loss, "step loop": step_loop_loss}
        for r, order in zip(range(rounds), itertools.cycle([list(contenders), list(contenders)[::-1]])):
            for contender in order:
                chunk = batches[(r % 2) * per_window : (r % 2 + 1) * per_window]
                rates[contender].append(window(model, optimizer, contenders[contender], chunk))
        ours, loop = statistics.median(rates["model"]), statistics.median(rates["step loop"])
        print(f"{name:<26}{ours:>13.0f}{loop:>17.0f}{ours / loop:>7.2f}x")
        summary[name] = {"model_tokens_per_s": round(ours), "step_loop_tokens_per_s": round(loop)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
