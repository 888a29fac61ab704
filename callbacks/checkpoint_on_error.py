"""CheckpointOnError: whatever error ends a training run (in any hook, or Ctrl-C), the trained state is kept.

A run that dies at its first validation after an hour of training, before ModelCheckpoint ever wrote a
file, would otherwise lose that hour. When ``fit`` ends in an exception after at least one optimizer step,
this writes the state of the last completed step (weights, optimizer, loop position: Lightning redoes an
interrupted batch on resume) beside the run's other checkpoints and says on stderr where it is and how to
resume. `zoo fit` adds it to every run. Under DDP it writes nothing: saving is collective, and the other
processes may be stuck where the failing one left them; the periodic checkpoints stand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback


class CheckpointOnError(Callback):
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn != "fit" or trainer.global_step == 0 or trainer.world_size > 1:
            return
        path = self.path(trainer)
        try:
            trainer.save_checkpoint(path)
        except Exception as error:  # never hide the error that ended the run behind this one
            print(f"zoo fit: the run's state could not be saved to {path} ({error}).", file=sys.stderr)
            return
        print(
            f"zoo fit: stopped by {type(exception).__name__} after {trainer.global_step} steps; the state after the "
            f"last completed step is saved in {path} (resume: --ckpt_path {path}).",
            file=sys.stderr,
        )

    @staticmethod
    def path(trainer: L.Trainer) -> Path:
        """In ModelCheckpoint's folder when there is one, else ``default_root_dir/checkpoints``."""
        checkpoint = trainer.checkpoint_callback
        folder = getattr(checkpoint, "dirpath", None) or Path(trainer.default_root_dir) / "checkpoints"
        return Path(folder) / f"stopped-at-step-{trainer.global_step}.ckpt"
