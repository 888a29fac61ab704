"""RNNState: the state of a stack of LSTM or GRU layers, batch-first.

torch's RNNs keep state layers-first, (layers, B, H); decoding gathers and checks rows on the
first axis, so the state travels batch-first and is converted at the RNN's door.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RNNState:
    h: torch.Tensor  # (B, layers, H)
    c: torch.Tensor | None = None  # (B, layers, H): LSTM only

    @classmethod
    def zeros(cls, batch_size: int, layers: int, hidden_size: int, lstm: bool, like: torch.Tensor) -> RNNState:
        h = like.new_zeros(batch_size, layers, hidden_size)
        return cls(h, torch.zeros_like(h) if lstm else None)

    @classmethod
    def from_torch(cls, final: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> RNNState:
        """From what ``nn.LSTM`` ((h, c), each (layers, B, H)) or ``nn.GRU`` (h) returns."""
        if isinstance(final, tuple):
            return cls(final[0].transpose(0, 1), final[1].transpose(0, 1))
        return cls(final.transpose(0, 1))

    def to_torch(self) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """What ``nn.LSTM`` or ``nn.GRU`` takes as its initial state."""
        h = self.h.transpose(0, 1).contiguous()
        return h if self.c is None else (h, self.c.transpose(0, 1).contiguous())

    @property
    def batch_size(self) -> int:
        return self.h.shape[0]


# A char-RNN's carried training state is saved in checkpoints (callbacks.HiddenStateCallback), which are
# read with weights_only=True: allow this plain class of tensors there.
torch.serialization.add_safe_globals([RNNState])
