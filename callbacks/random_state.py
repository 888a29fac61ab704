"""RandomStateCheckpoint: puts the random number generators in checkpoints, for exact resume.

Lightning checkpoints hold weights, optimizer, schedulers and loop progress, but not the
generators' state, so a resumed run draws other dropout masks than the run it continues.
This callback saves the state of torch's CPU generator (and CUDA's, when present) and of
Python's ``random`` at every checkpoint, and restores it when training resumes (at
``on_train_start``, after any sanity-check validation, just before the next batch).
Data loaders should not draw from the global generator between batches (give them their
own ``generator``); the zoo's DataModules don't.
"""

from __future__ import annotations

import random

import torch
from lightning.pytorch.callbacks import Callback


class RandomStateCheckpoint(Callback):
    def __init__(self):
        self._to_restore: dict | None = None

    def state_dict(self) -> dict:
        state = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self._to_restore = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        if self._to_restore is None:
            return
        state, self._to_restore = self._to_restore, None
        torch.set_rng_state(state["torch"])
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))  # checkpoints store tuples as lists
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
