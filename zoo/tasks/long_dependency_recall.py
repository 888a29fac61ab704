"""Recall accuracy on the long-dependency corpus (datamodules/long_dependency.py): what carrying state buys."""

from __future__ import annotations

import torch

from datamodules.long_dependency import cued_positions


@torch.no_grad()
def recall_accuracy(model, text: str, seq_len: int, carry_state: bool) -> float:
    """How often ``model`` predicts the cued key whose first copy lies beyond ``seq_len``.

    The text runs through the model at batch size 1 in windows of ``seq_len``, the state
    carried from window to window (stateful) or reset (stateless): each regime as trained.
    ``model(tokens, state) -> (logits, state)`` and ``model.vocab`` are all it needs.
    """
    ids = model.vocab.encode(text)[None]  # (1, N)
    state, guesses = None, []
    for start in range(0, len(text) - 1, seq_len):
        logits, final = model(ids[:, start : start + seq_len], state)  # (1, T, V)
        state = final if carry_state else None
        guesses.append(logits[0].argmax(-1))
    guessed = torch.cat(guesses)  # guessed[i] is the guess for character i + 1
    positions = [p for p in cued_positions(text, min_distance=seq_len + 2) if p <= len(guessed)]
    if not positions:
        raise ValueError("the text holds no cued key beyond seq_len: use a longer text or a larger max_gap")
    return sum(int(guessed[p - 1]) == model.vocab.index[text[p]] for p in positions) / len(positions)
