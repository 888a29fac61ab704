"""Checkpoints written atomically: a run killed while saving leaves the previous file intact.

Lightning's TorchCheckpointIO writes straight into the destination, so a kill during the
write leaves a truncated ``last.ckpt``. This writes it through ``zoo.hub.atomic_writes.atomic_file``:
a hidden temporary file beside it, flushed to disk, then renamed over the destination.
`zoo fit` uses it by default.
"""

from __future__ import annotations

from lightning.pytorch.plugins.io import TorchCheckpointIO

from zoo.hub.atomic_writes import atomic_file


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_file(path) as partial:
            super().save_checkpoint(checkpoint, partial, storage_options)
