"""Weights saved under a layer's older names load under today's: a model lists its renames once.

Bundles and checkpoints written before a layer was restructured keep loading, strictly (every
weight must still find its place), through a ``load_state_dict`` pre-hook that rewrites their keys.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

Renames = list[tuple[str, str]]  # (regex over a weight's name, re.sub replacement), applied in order


def rename_old_weights(state_dict: dict[str, Any], renames: Renames, prefix: str = "") -> dict[str, Any]:
    """``state_dict`` (changed in place, and returned) with the keys under ``prefix`` that match an old name
    rewritten to the new one, in their order; current names pass unchanged."""
    compiled = [(re.compile(old), new) for old, new in renames]

    def current(key: str) -> str:
        if not key.startswith(prefix):
            return key
        name = key[len(prefix) :]
        for old, new in compiled:
            name = old.sub(new, name)
        return prefix + name

    renamed = {current(key): value for key, value in state_dict.items()}
    state_dict.clear()
    state_dict.update(renamed)
    return state_dict


def accept_old_names(module: nn.Module, renames: Renames) -> None:
    """Every ``module.load_state_dict`` renames old keys first; ``module.old_weight_names`` keeps the list, for
    checks that compare a file's names with the model's before loading (zoo.hub.checkpoints)."""
    module.old_weight_names = renames
    module.register_load_state_dict_pre_hook(
        lambda _, state_dict, prefix, *__: rename_old_weights(state_dict, renames, prefix)
    )


def optimizer_state_in_current_order(checkpoint: dict[str, Any], model: nn.Module) -> None:
    """Optimizers keep their state by parameter position. Where a restructure changed the order in which a
    model registers its parameters (a Transformer's final norms now sit with their stacks), put a resumed
    checkpoint's optimizer state (changed in place) into today's order, matched by name."""
    renames = getattr(model, "old_weight_names", [])
    current = [name for name, _ in model.named_parameters()]  # one name per tensor, tied weights counted once
    known = set(current)
    saved = [
        name for name in rename_old_weights(dict.fromkeys(checkpoint.get("state_dict", {})), renames) if name in known
    ]
    if saved == current or sorted(saved) != sorted(current):  # nothing moved, or not this model (refused elsewhere)
        return
    position = {name: i for i, name in enumerate(saved)}
    for optimizer in checkpoint.get("optimizer_states", []):
        if len(optimizer["param_groups"]) != 1:
            raise ValueError(
                "a checkpoint from before the layer restructure with several parameter groups cannot resume"
            )
        state = optimizer["state"]
        optimizer["state"] = {i: state[position[name]] for i, name in enumerate(current) if position[name] in state}
