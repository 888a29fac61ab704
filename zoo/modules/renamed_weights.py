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
    rewritten to the new one; current names pass unchanged."""
    compiled = [(re.compile(old), new) for old, new in renames]
    for key in [k for k in state_dict if k.startswith(prefix)]:
        name = key[len(prefix) :]
        for old, new in compiled:
            name = old.sub(new, name)
        if prefix + name != key:
            state_dict[prefix + name] = state_dict.pop(key)
    return state_dict


def accept_old_names(module: nn.Module, renames: Renames) -> None:
    """Every ``module.load_state_dict`` renames old keys first; ``module.old_weight_names`` keeps the list, for
    checks that compare a file's names with the model's before loading (zoo.hub.checkpoints)."""
    module.old_weight_names = renames
    module.register_load_state_dict_pre_hook(
        lambda _, state_dict, prefix, *__: rename_old_weights(state_dict, renames, prefix)
    )
