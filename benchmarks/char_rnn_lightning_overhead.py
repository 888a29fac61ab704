"""Is Lightning slowing the char-RNN down? CharRNN trained by a Lightning Trainer vs a plain PyTorch loop.

Same model class, same stateful batches (CharDataModule), same Adam, same gradient
clipping, same detached carried state. The two contenders alternate timing windows in one
process (the machine's speed drifts), and each window times steady-state steps only:
Trainer construction and the first warm-up steps are excluded on both sides.

    python benchmarks/char_rnn_lightning_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning_utilities.core.apply_func import apply_to_collection

from callbacks import HiddenStateCallback
from datamodules import CharDataModule
from zoo import CharRNN

WARMUP = 3


class StepTimer(Callback):
    """Wall-clock time of training steps after the warm-up ones."""

    def __init__(self):
        self.start = self.end = None
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == WARMUP:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= WARMUP:
            self.end, self.steps = time.perf_counter(), self.steps + 1


def lightning_window(model, dm, steps: int) -> float:
    timer = StepTimer()
    trainer = L.Trainer(
        max_steps=steps + WARMUP,
        limit_val_batches=0,
        gradient_clip_val=5.0,
        callbacks=[HiddenStateCallback("preserve"), timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, dm)
    return timer.steps / (timer.end - timer.start)


def plain_window(model, batches, optimizer, steps: int) -> float:
    model.train()
    state = None
    for i, (inputs, targets) in enumerate(batches[: steps + WARMUP]):
        if i == WARMUP:
            start = time.perf_counter()
        logits, state = model(inputs, state)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        state = apply_to_collection(state, torch.Tensor, torch.Tensor.detach)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--source", default="shakespeare")
    args = parser.parse_args()
    rounds, steps = (3, 6) if args.quick else (7, 40)
    torch.manual_seed(0)
    dm = CharDataModule(args.source, mode="stateful", seq_len=100, batch_size=64)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    chars_per_step = 64 * 100
    lit_model = CharRNN(dm.vocab_size, dm.vocab, hidden_size=512, num_layers=2)
    plain_model = CharRNN(dm.vocab_size, dm.vocab, hidden_size=512, num_layers=2)
    plain_model.load_state_dict(lit_model.state_dict())
    optimizer = torch.optim.Adam(plain_model.parameters(), lr=2e-3)

    rows = []
    for r in range(rounds):  # alternate, and swap who goes first, so drift hits both alike
        order = ["lightning", "plain"] if r % 2 == 0 else ["plain", "lightning"]
        speeds = {}
        for who in order:
            if who == "lightning":
                speeds[who] = lightning_window(lit_model, dm, steps) * chars_per_step
            else:
                speeds[who] = plain_window(plain_model, batches, optimizer, steps) * chars_per_step
        rows.append(speeds)
        print(f"round {r}: lightning {speeds['lightning']:9.0f} chars/s   plain {speeds['plain']:9.0f} chars/s")

    lit = statistics.median(r["lightning"] for r in rows)
    plain = statistics.median(r["plain"] for r in rows)
    ratios = [r["lightning"] / r["plain"] for r in rows]
    print()
    print(f"{'contender':<12}{'median chars/s':>16}")
    print(f"{'lightning':<12}{lit:>16.0f}")
    print(f"{'plain loop':<12}{plain:>16.0f}")
    print(f"median per-round ratio lightning/plain: {statistics.median(ratios):.3f} (rounds: {len(rows)})")
    summary = {
        "benchmark": "char_rnn_lightning_overhead",
        "model": "2x512 LSTM, seq 100, batch 64",
        "lightning_chars_per_s": round(lit),
        "plain_chars_per_s": round(plain),
        "ratio_median": round(statistics.median(ratios), 3),
        "quick": args.quick,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
