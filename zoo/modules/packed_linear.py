"""PackedLinear: a bf16 nn.Linear whose weight oneDNN has laid out for its kernel once, not on every call.

torch's bf16 ``F.linear`` on the CPU hands oneDNN a plain weight, which oneDNN reorders into its blocked layout
at every call. A decoding step runs about twenty small products, so that reorder is much of its cost: on one
thread of an AMX Xeon, 256 x 1024 at 24 rows took 58 us plain and 40 packed, the 256 x 8,000 output layer 483
and 253 (BENCHMARKS.md, "Packed bf16 weights"). The products are the same kernel's, bit for bit.

The packed copy is made on the first call that can use it (no gradient, bf16 on the CPU) and made again when the
weight changes (another tensor, or its version counter moved: ``load_state_dict``, an in-place edit). Any other
call (training, float32, another device) runs the ordinary ``F.linear``. The packed tensor is oneDNN's opaque
kind, which cannot be saved or copied, so it lives outside the state dict and is dropped when the module is
copied.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def packing_available() -> bool:
    """torch's CPU build has oneDNN with its packed-weight linear (what torch.compile's CPU freezing uses), and
    oneDNN runs bf16 on this CPU (AVX512-BF16 or AMX; it has no bf16 kernel on AVX2-only CPUs, where torch's own
    F.linear still runs bf16)."""
    ops = torch.ops.mkldnn
    names = ("_linear_pointwise", "_reorder_linear_weight", "_is_mkldnn_bf16_supported")
    return (
        torch.backends.mkldnn.is_available() and all(hasattr(ops, n) for n in names) and ops._is_mkldnn_bf16_supported()
    )


class PackedLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if torch.is_grad_enabled() or w.dtype != torch.bfloat16 or x.dtype != w.dtype or x.device.type != "cpu":
            return F.linear(x, w, self.bias)
        key = (w.data_ptr(), None if w.is_inference() else w._version)  # inference tensors cannot change in place
        if self.__dict__.get("_packed_key") != key:
            self.__dict__["_packed"] = torch.ops.mkldnn._reorder_linear_weight(w.detach(), 64)  # 64: a batch's rows
            self.__dict__["_packed_key"] = key
        return torch.ops.mkldnn._linear_pointwise(x, self.__dict__["_packed"], self.bias, "none", [], "")

    def __getstate__(self):  # copy.deepcopy and pickle: the opaque packed tensor cannot be copied; it is remade
        return {k: v for k, v in super().__getstate__().items() if k not in ("_packed", "_packed_key")}


def pack_linears(model: nn.Module) -> nn.Module:
    """``model`` with each of its nn.Linear layers a PackedLinear sharing the same parameters (in place)."""
    if not packing_available():
        return model
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = PackedLinear  # the same module, parameters and hooks; only its forward differs
    return model
