"""Calling torch's RNN layers so that they run under every precision the zoo trains and decodes with.

oneDNN, which runs torch's LSTM on x86 CPUs, has no bf16 LSTM under autocast ("could not create a primitive
descriptor for the LSTM forward propagation primitive"; CUDA has one). There the LSTM runs in fp32, as
autocast runs other ops it has no low-precision kernel for. A bf16 decoding copy (zoo/modules/compute_types.py)
keeps its RNN layers in fp32 for the same reason: inputs and state are cast to the layer's type and its
outputs and state back to the inputs' type, so the rest of the model sees one type. Elsewhere the layer is
called as it is.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence


def run_rnn(rnn: nn.RNNBase, inputs: torch.Tensor | PackedSequence, hidden: Any = None) -> tuple[Any, Any]:
    """``rnn(inputs, hidden)``, in the layer's own type (fp32 under CPU autocast for the LSTM)."""
    data = inputs.data if isinstance(inputs, PackedSequence) else inputs
    layer_type = rnn.weight_ih_l0.dtype
    autocast_lstm = isinstance(rnn, nn.LSTM) and data.device.type == "cpu" and torch.is_autocast_enabled("cpu")
    if not autocast_lstm and data.dtype == layer_type:
        return rnn(inputs, hidden)
    with torch.autocast("cpu", enabled=False):
        out, hidden = rnn(inputs.to(layer_type), cast(hidden, layer_type))
    if autocast_lstm:  # autocast casts what reads these
        return out, hidden
    return out.to(data.dtype), cast(hidden, data.dtype)


def cast(hidden: Any, dtype: torch.dtype) -> Any:
    """An RNN's hidden state (a tensor, an LSTM's pair, or None) in ``dtype``."""
    if hidden is None:
        return None
    return tuple(h.to(dtype) for h in hidden) if isinstance(hidden, tuple) else hidden.to(dtype)
