"""int8 inference on the CPU: torch's dynamic quantization of every Linear layer.

Weights are stored in int8 (per tensor), activations quantized on the fly per batch; embeddings and layer norms
stay in float32. For decoding only: the quantized copy cannot train. torch marks its quantized tensors as
deprecated in favour of torchao, whose CPU int8 kernels need a newer torch than the one this project pins; the
warning is silenced here and the benchmark (benchmarks/translation_engines.py) watches speed and BLEU.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn


def int8_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) whose Linear layers compute in int8; ``model`` is left as it is."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
