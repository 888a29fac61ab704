"""Golden toy tasks every translation architecture must learn in seconds on a CPU (as in yoyodyne):
reversing digit strings. Training is a plain loop over the model's own loss and optimizer; learning is
judged as "reaches the bar within a step cap", never as one trajectory's exact result."""

from __future__ import annotations

import random

import torch

from datamodules.collate import collate_pairs


def reverse_task(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        src = [rng.randint(4, 11) for _ in range(rng.randint(3, 7))]
        pairs.append({"src_ids": src, "tgt_ids": src[::-1]})
    return pairs


def exact_match(model, pairs) -> float:
    """The share of sources whose greedy output is exactly the target (and then <eos>)."""
    batch = collate_pairs(pairs)
    results = model.generate(batch["src"], batch["src_pad_mask"], max_len_a=1.0, max_len_b=2)
    return sum(h[0].tokens.tolist() == p["tgt_ids"] + [model.eos_id] for h, p in zip(results, pairs)) / len(pairs)


def training_steps(model, pairs, seed: int = 0, batch_size: int = 64):
    """Endless training on random batches of ``pairs`` with the model's own optimizer; yields the step count."""
    rng = random.Random(seed)
    configured = model.configure_optimizers()  # an optimizer, or {"optimizer", "lr_scheduler"}
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    scheduler = configured["lr_scheduler"]["scheduler"] if isinstance(configured, dict) else None
    step = 0
    while True:
        model.train()
        total, count = model.sequence_loss(collate_pairs(rng.sample(pairs, min(batch_size, len(pairs)))))
        optimizer.zero_grad()
        (total / count).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        step += 1
        yield step


def train_until(
    model, pairs, held_out, bar: float, max_steps: int, check_every: int = 50, seed: int = 0
) -> tuple[float, int]:
    """Train until exact match on ``held_out`` reaches ``bar`` or ``max_steps`` pass: (exact match, steps)."""
    score = 0.0
    for step in training_steps(model, pairs, seed):
        if step % check_every == 0 or step == max_steps:
            with torch.no_grad():
                score = exact_match(model.eval(), held_out)
            if score >= bar or step == max_steps:
                return score, step
