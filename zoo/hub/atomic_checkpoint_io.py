"""Checkpoints written atomically: a run killed while saving leaves the previous file intact.

Lightning's TorchCheckpointIO writes straight into the destination, so a kill during the
write leaves a truncated ``last.ckpt``. This writes a hidden temporary file beside it,
flushes it to disk, then renames it over the destination (atomic on POSIX and Windows).
`zoo fit` uses it by default.
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            super().save_checkpoint(checkpoint, partial, storage_options)
            with open(partial, "rb+") as file:
                os.fsync(file.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
