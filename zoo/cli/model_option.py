"""The model of an inference command's ``--checkpoint`` (a .ckpt file or bundle folder) or ``--pretrained``."""

from __future__ import annotations

import lightning as L

from zoo.hub.checkpoints import CheckpointError
from zoo.hub.loading import load_model, load_pretrained


def model_for_command(checkpoint: str | None, pretrained: str | None, needs: str, refusal: str) -> L.LightningModule:
    """The model, which must have the method ``needs``; otherwise a CheckpointError "<source> holds a <Class>,
    which <refusal>"."""
    model = load_model(checkpoint) if checkpoint else load_pretrained(pretrained)
    if not hasattr(model, needs):
        raise CheckpointError(f"{checkpoint or pretrained} holds a {type(model).__name__}, which {refusal}")
    return model
