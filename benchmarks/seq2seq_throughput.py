"""RNN attention seq2seq training throughput: today's training path against the per-step loop it replaced.

Models of the shipped configs' sizes (GRU, embeddings 256, hidden 512, bidirectional encoder,
dropout 0.3, BPE 8k joint) on Multi30k en-fr training batches of at most 4000 tokens:
Bahdanau, and Luong general with and without input feeding. Contenders per attention kind,
same batches, Adam 1e-3 and gradient clipping at 1.0:
  - step loop: the loss from the decoder run one position at a time (the decoding step) once per target
    position, which is how ``sequence_loss`` trained before it got its own lean paths;
  - model: ``Seq2Seq.sequence_loss``, what `zoo fit` trains with, same model;
  - model, tied: the same with ``tie_embeddings`` (output features of embedding_dim 256: the
    vocabulary projection reads 256 units, not 512);
  - tied, bf16: the same under ``torch.autocast("cpu", torch.bfloat16)``, what `zoo fit` does by default on a
    CPU with native bf16 (the GRU itself stays fp32: autocast has no bf16 GRU on the CPU).
Windows alternate in one process, the order rotated every round (this machine's speed
drifts); throughput is real (non-pad) target tokens per second of forward, backward and
optimizer step; medians over windows, ratios to the step loop.

    python benchmarks/seq2seq_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
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
        embedded = model.dropout(model.tgt_embedding(batch["tgt_in"][:, t : t + 1]))  # (B, 1, E)
        step_features, state, _ = model.decoder(embedded, state)  # one position: the decoding step
        features.append(step_features)
    features = torch.cat(features, 1)  # (B, T, F)
    real = ~batch["tgt_pad_mask"]
    logits = model.output(model.dropout(features[real]))
    return F.cross_entropy(logits, batch["tgt_out"][real], reduction="sum"), real.sum()


def model_loss(model: Seq2Seq, batch) -> tuple[torch.Tensor, torch.Tensor]:
    return model.sequence_loss(batch)


def bf16_model_loss(model: Seq2Seq, batch) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.autocast("cpu", torch.bfloat16):
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
    parser.add_argument("--quick", action="store_true", help="2 rounds of 4-batch windows (about two minutes)")
    args = parser.parse_args()
    rounds, per_window = (2, 4) if args.quick else (6, 8)
    dm = TranslationDataModule("multi30k", "en-fr", tokenizer="bpe", vocab_size=8000, joint_vocab=True, max_tokens=4000)
    dm.setup("fit")
    loader = iter(dm.train_dataloader())
    chunks = [[next(loader) for _ in range(per_window)] for _ in range(2)]
    print(f"Multi30k en-fr training batches of <= 4000 tokens, threads {torch.get_num_threads()}")
    widths = (11, 9, 13, 12)
    heads = ("step loop", "model", "model, tied", "tied, bf16")
    print(f"{'variant':<26}" + "".join(f"{h:>{w}}" for h, w in zip(heads, widths)) + "   tokens/s, ratio to step loop")
    summary = {}
    for name, variant in VARIANTS.items():
        contenders = {}
        for label, tied, loss_fn in (("step loop", False, step_loop_loss), ("model", False, model_loss),
                                     ("model, tied", True, model_loss), ("tied, bf16", True, bf16_model_loss)):  # fmt: skip
            torch.manual_seed(0)
            model = Seq2Seq(dm.src_vocab_size, dm.tgt_vocab_size, **SIZES, **variant, tie_embeddings=tied).train()
            contenders[label] = (model, torch.optim.Adam(model.parameters(), lr=1e-3), loss_fn)
        rates = {label: [] for label in contenders}
        order = list(contenders)
        for r in range(rounds):
            for label in order[r % len(order) :] + order[: r % len(order)]:
                rates[label].append(window(*contenders[label], chunks[r % 2]))
        median = {label: statistics.median(values) for label, values in rates.items()}
        base = median["step loop"]
        cells = "".join(f"{median[label]:>{w}.0f}" for label, w in zip(order, widths))
        ratios = ", ".join(f"{median[label] / base:.2f}x" for label in order[1:])
        print(f"{name:<26}{cells}   {ratios}")
        summary[name] = {label.replace(", ", "_").replace(" ", "_"): round(v) for label, v in median.items()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
