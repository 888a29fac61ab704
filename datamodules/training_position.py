"""Where training stands in its epoch, for exact mid-epoch resume.

Lightning saves a DataModule's ``state_dict`` in every checkpoint and hands it back to
``load_state_dict`` on resume, before the training loader is built. The DataModules store
this position and start their first resumed epoch after the batches already trained on.
It comes from Lightning's own progress counters rather than from the loader, because
Lightning fetches one batch ahead: a loader's count would include a batch not yet used.
"""

from __future__ import annotations

import math

import lightning as L


def training_position(trainer: L.Trainer | None) -> dict[str, int]:
    """``{"epoch", "batches_done"}`` of the running fit (a checkpoint written at a batch's end
    counts that batch); empty outside training."""
    if trainer is None or not trainer.training:
        return {}
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    epoch = trainer.current_epoch
    if math.isfinite(trainer.num_training_batches) and done >= trainer.num_training_batches:
        return {"epoch": epoch + 1, "batches_done": 0}  # saved on the epoch's last batch
    return {"epoch": epoch, "batches_done": done}
