"""Nested decoding and training states: map a function over every tensor, gather rows for beam search.

Decoding states (LSTM (h, c), KV caches, encoder memory) are nests of tensors in tuples,
lists, dicts and dataclasses, batch-first. One generic map lets beam search reorder them
without knowing their layout.

``Static`` marks a per-source constant, such as encoder outputs: identical across the
beams of one source, so reordering beams leaves it alone and it is gathered only when
the number of rows changes (expanding sources to beams once, or dropping finished ones).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import torch
from lightning_utilities.core.apply_func import apply_to_collection

T = TypeVar("T")


@dataclasses.dataclass
class Static(Generic[T]):
    value: T  # a tensor or nest of tensors, batch-first


def map_tensors(
    fn: Callable[[torch.Tensor], torch.Tensor], state: Any, on_static: Callable[[Static], Any] | None = None
) -> Any:
    """``state`` with ``fn`` applied to every tensor (through lightning_utilities' apply_to_collection, which
    knows dicts, lists, tuples, namedtuples and dataclasses); ``Static`` nodes go to ``on_static`` when given."""

    def apply(node: torch.Tensor | Static) -> Any:
        if isinstance(node, Static):
            return on_static(node) if on_static is not None else Static(map_tensors(fn, node.value))
        return fn(node)

    return apply_to_collection(state, (torch.Tensor, Static), apply)


def tensors_of(state: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    map_tensors(lambda t: found.append(t) or t, state)
    return found


def gather_rows(state: Any, index: torch.Tensor) -> Any:
    """Row ``i`` of the result is row ``index[i]`` of ``state``, for every tensor in the nest.

    ``Static`` entries are gathered only when ``len(index)`` differs from their row count.
    """

    def select(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.index_select(0, index)

    def static(node: Static) -> Static:
        rows = tensors_of(node.value)
        return node if rows and rows[0].shape[0] == len(index) else Static(map_tensors(select, node.value))

    return map_tensors(select, state, on_static=static)
