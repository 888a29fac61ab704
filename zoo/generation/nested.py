"""Nested decoding and training states: map a function over every tensor, gather rows for beam search.

Decoding states (LSTM (h, c), KV caches, encoder memory) are nests of tensors in tuples,
lists, dicts and dataclasses, batch-first. One generic map lets beam search reorder them
without knowing their layout.

``Static`` marks a per-source constant, such as encoder outputs: identical across the
beams of one source, so reordering beams leaves it alone and it is gathered only when
the number of rows changes (expanding sources to beams once, or dropping finished ones).

``join_rows`` is the other way: the rows of two states in one, for requests that join a batch
while it decodes (zoo/serving). Tensors are concatenated; a part whose rows may differ in
length (a KV cache of fewer positions, a shorter source) has its own ``join_rows`` that pads.
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
    """Row ``i`` of the result is row ``index[i]`` of ``state``, for every tensor in the nest; ``Static`` nodes
    are gathered only under ``static_needs_gather``."""

    def select(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.index_select(0, index)

    def static(node: Static) -> Static:
        return Static(map_tensors(select, node.value)) if static_needs_gather(node, index) else node

    return map_tensors(select, state, on_static=static)


def static_needs_gather(node: Static, index: torch.Tensor) -> bool:
    """The rule for ``Static`` nodes: identical across the rows of one source, a node needs gathering only when
    rows move to other sources, which in decoding happens exactly when the number of rows changes (expanding
    sources to beams, dropping finished inputs). Reordering each source's beams keeps the count: no gather."""
    rows = tensors_of(node.value)
    return not rows or rows[0].shape[0] != len(index)


def join_rows(first: Any, second: Any) -> Any:
    """The state whose rows are ``first``'s, then ``second``'s: two nests of the same structure."""
    if hasattr(first, "join_rows"):
        return first.join_rows(second)
    if isinstance(first, torch.Tensor):
        return torch.cat([first, second])
    if isinstance(first, Static):
        return Static(join_rows(first.value, second.value))
    if dataclasses.is_dataclass(first):
        fields = {f.name: join_rows(getattr(first, f.name), getattr(second, f.name)) for f in dataclasses.fields(first)}
        return type(first)(**fields)
    if isinstance(first, (list, tuple)):
        joined = [join_rows(a, b) for a, b in zip(first, second, strict=True)]
        return type(first)(*joined) if hasattr(first, "_fields") else type(first)(joined)  # namedtuples too
    if isinstance(first, dict):
        return {key: join_rows(first[key], second[key]) for key in first}
    if first is None and second is None:
        return None
    raise TypeError(f"cannot join decoding states holding {type(first).__name__}")


def pad_positions(tensor: torch.Tensor, length: int, dim: int, value: float | bool = 0) -> torch.Tensor:
    """``tensor`` padded at the end of ``dim`` to ``length`` (source positions: padding comes last)."""
    missing = length - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_full(shape, value)], dim)
