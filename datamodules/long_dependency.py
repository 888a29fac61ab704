"""A synthetic corpus whose next character depends on text far back: the test bed for stateful training.

The text is a run of blocks ``k . . . . = k``: a key ``k`` drawn from ``KEYS``, a gap of
``g`` filler dots (``g`` uniform in [0, max_gap]), a cue ``=`` and the key again. Only the
character after the cue is predictable from the past, and only by remembering the key
``g + 2`` characters back. A model that sees ``seq_len`` characters of context cannot beat
chance (1/len(KEYS)) where ``g + 2 > seq_len``; a model that carries its state across
windows can, and learns to hold the key from the short gaps that fit inside one window.
"""

from __future__ import annotations

import random

KEYS = "abcd"
CUE = "="
FILLER = "."


def long_dependency_text(n_chars: int, max_gap: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n_chars:
        key = rng.choice(KEYS)
        block = key + FILLER * rng.randint(0, max_gap) + CUE + key
        parts.append(block)
        size += len(block)
    return "".join(parts)[:n_chars]


def cued_positions(text: str, min_distance: int) -> list[int]:
    """Indices of keys that follow a cue and lie at least ``min_distance`` after their first copy."""
    positions, start = [], 0
    for i, char in enumerate(text):
        if char in KEYS and (i == 0 or text[i - 1] != CUE):
            start = i
        elif char in KEYS and i - start >= min_distance:
            positions.append(i)
    return positions
