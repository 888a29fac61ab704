"""The number formats the zoo computes in: whether this machine has native bf16, and copies to decode in.

A CPU with AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake) or AMX (Intel Sapphire Rapids and later)
multiplies bf16 matrices 2-3x faster than fp32; on AVX2-only CPUs torch emulates bf16 and it is slower than
fp32, so bf16 is used by default only where the hardware has it (BENCHMARKS.md, "bf16 on the CPU").
``ZOO_NATIVE_BF16=0`` (or 1) overrides the detection: the test suite sets 0 so that it takes the same paths on
every CPU, and a user can measure either choice on one machine.

Decoding compute types carry CTranslate2's names: float32, bfloat16 (a bf16 copy of the weights; the
log-probabilities that beam scores add up are computed in fp32 by every model), int8 (torch's dynamic
quantization of the Linear layers, zoo/modules/int8.py), and default: bfloat16 with native bf16 for models
without RNN layers (their LSTM has no bf16 kernel on the CPU and stays fp32, so bf16 gains little), else float32.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path

import torch
from torch import nn

from zoo.modules.int8 import int8_copy
from zoo.modules.packed_linear import pack_linears

CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo's names
COMPUTE_TYPES = ("default", "float32", "bfloat16", "int8")
OVERRIDE = "ZOO_NATIVE_BF16"


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware (so bf16 is faster than fp32 there)."""
    forced = os.environ.get(OVERRIDE)
    if forced is not None:
        if forced not in ("0", "1"):
            raise ValueError(f"{OVERRIDE} must be 0 or 1 (or unset, to detect), got {forced!r}")
        return forced == "1"
    if torch.device(device).type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(cpu_flags() & CPU_BF16_FLAGS)


@cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty elsewhere (macOS, Windows: bf16 is then not assumed)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):  # x86, ARM
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def default_training_precision() -> str:
    """Lightning's ``precision`` for a run that names none: bf16-mixed where the device it trains on (a GPU if
    there is one, as Lightning's accelerator "auto" picks) has native bf16, else 32-true."""
    return "bf16-mixed" if native_bf16("cuda" if torch.cuda.is_available() else "cpu") else "32-true"


def resolved_compute_type(compute_type: str, model: nn.Module | None = None) -> str:
    """``default`` made concrete for this machine and ``model``; the others checked and returned."""
    if compute_type not in COMPUTE_TYPES:
        raise ValueError(f"compute type must be one of {', '.join(COMPUTE_TYPES)}, got {compute_type!r}")
    if compute_type == "default":
        return "bfloat16" if native_bf16() and not (model is not None and has_rnn(model)) else "float32"
    return compute_type


def has_rnn(model: nn.Module) -> bool:
    """Whether ``model`` has RNN layers, which decode in fp32 anyway: a bf16 copy gains little there."""
    return any(isinstance(module, nn.RNNBase) for module in model.modules())


def decoding_copy(model: nn.Module, compute_type: str) -> nn.Module:
    """``model`` ready to decode in ``compute_type`` (see the module docstring): the model itself for float32,
    else a copy in eval mode (``model`` is left as it is)."""
    compute_type = resolved_compute_type(compute_type, model)
    if compute_type == "int8":
        return int8_copy(model)
    if compute_type == "bfloat16":
        bf16 = copy.deepcopy(model).to(torch.bfloat16).eval()
        for module in bf16.modules():
            if isinstance(module, nn.RNNBase):  # no bf16 LSTM kernel on the CPU (zoo/modules/recurrent.py)
                module.float()
        return pack_linears(bf16)  # oneDNN lays each weight out once (zoo/modules/packed_linear.py)
    return model
