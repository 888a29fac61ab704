"""FLOPs per batch, the estimate Lightning's ThroughputMonitor turns into FLOP/s and MFU (``flops_per_batch``).

Kaplan et al. (2020): a parameter that multiplies a token's activations costs 2 FLOPs per token in the forward
pass and 4 more in the backward pass. Embedding tables are lookups, free, unless they double as the output
layer. Attention scores, which grow with the length, are left out: a slight undercount for long sequences.
"""

from __future__ import annotations

from torch import nn

FORWARD, TRAINING = 2, 6  # FLOPs per dense parameter per token


def dense_parameters(module: nn.Module, output: nn.Module | None = None) -> int:
    """Parameters of ``module`` that take part in a multiply-add for every token it processes (embedding tables
    left out, unless shared with the ``output`` layer)."""
    shared = {id(p) for p in output.parameters()} if output is not None else set()
    lookups = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)} - shared
    return sum(p.numel() for p in module.parameters() if id(p) not in lookups)
