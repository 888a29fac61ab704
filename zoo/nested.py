"""Apply a function to every tensor in a nested state (tensors inside tuples, lists, dicts, dataclasses).

Decoding states (LSTM (h, c), KV caches) and carried training states are such nests; one
generic map lets beam search reorder them and the hidden-state callback detach them
without knowing their layout.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch


def map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return fn(state)
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        changes = {f.name: map_tensors(fn, getattr(state, f.name)) for f in dataclasses.fields(state) if f.init}
        return dataclasses.replace(state, **changes)
    if isinstance(state, dict):
        return type(state)((key, map_tensors(fn, value)) for key, value in state.items())
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # namedtuple
        return type(state)(*(map_tensors(fn, value) for value in state))
    if isinstance(state, (list, tuple)):
        return type(state)(map_tensors(fn, value) for value in state)
    return state


def tensors_of(state: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    map_tensors(lambda t: found.append(t) or t, state)
    return found
