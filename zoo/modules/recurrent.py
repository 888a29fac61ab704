"""Calling torch's RNN layers so that they run under every precision the zoo trains with.

oneDNN, which runs torch's LSTM on x86 CPUs, has no bf16 LSTM under autocast ("could not create a primitive
descriptor for the LSTM forward propagation primitive"; CUDA has one). There the LSTM runs in fp32, as
autocast runs other ops it has no low-precision kernel for; elsewhere the layer is called as it is.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence


def run_rnn(rnn: nn.RNNBase, inputs: torch.Tensor | PackedSequence, hidden: Any = None) -> tuple[Any, Any]:
    """``rnn(inputs, hidden)``, in fp32 where the CPU's LSTM has no bf16 kernel under autocast."""
    device = inputs.data.device if isinstance(inputs, PackedSequence) else inputs.device
    if not (isinstance(rnn, nn.LSTM) and device.type == "cpu" and torch.is_autocast_enabled("cpu")):
        return rnn(inputs, hidden)
    with torch.autocast("cpu", enabled=False):
        if hidden is not None:
            hidden = tuple(h.float() for h in hidden)
        return rnn(inputs.float(), hidden)
