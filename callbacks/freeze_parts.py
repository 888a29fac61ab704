"""FreezeParts: fine-tune only some of a model; the named parts keep the weights they start with.

    trainer:
      callbacks:
        - class_path: callbacks.FreezeParts
          init_args: {parts: [embeddings, encoder]}     # a char-RNN: [embeddings, layers.0]

Part names are the model's (``model.part_names()``: embeddings, encoder, decoder, output, layers.N); a name the
model lacks is an error listing them, before the first step. Frozen parameters take no gradient, so the optimizer
leaves them alone (AdamW's weight decay included: it skips parameters without a gradient). Applied at every fit
setup, so a resumed run freezes the same parts.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info


class FreezeParts(Callback):
    def __init__(self, parts: list[str]):
        if isinstance(parts, str) or not parts:
            raise ValueError(
                f"parts must be a non-empty list of part names (e.g. [embeddings, encoder]), got {parts!r}"
            )
        self.parts = list(parts)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not hasattr(pl_module, "parameters_of"):
            raise ValueError(f"FreezeParts needs a zoo model with named parts; {type(pl_module).__name__} has none.")
        frozen = {id(p): p for part in self.parts for p in pl_module.parameters_of(part)}
        for parameter in frozen.values():
            parameter.requires_grad_(False)
        count, total = sum(p.numel() for p in frozen.values()), sum(p.numel() for p in pl_module.parameters())
        rank_zero_info(f"FreezeParts: {', '.join(self.parts)} frozen ({count:,} of {total:,} parameters).")
