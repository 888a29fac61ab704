"""Lightning's ModelCheckpoint with ``save_last=True`` meaning the latest weights, every time it checks.

Since Lightning 2.6.0, ``last.ckpt`` is written only at a step where a top-k checkpoint is written too. With a
``monitor`` and ``save_top_k: 1`` (every config here) it became a copy of the best checkpoint: a run that resumes
from it after an interrupt starts again from its best validation, not from where it stopped, and a time-budget run
(callbacks.TimeBudgetDecay) loses the end of its decay whenever the last validation is not the best (the 30-minute
char Transformer lost its last 259 steps). openclimatefix/pvnet#544 met the same change. This subclass writes
``last.ckpt`` at every check Lightning's own skips, and once more when training ends if the last weights are not in
it yet (a stop between validations). Same arguments, same state key (it keeps the name ``ModelCheckpoint``), so it
resumes the runs of Lightning's and its top-k files are Lightning's.
"""

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint


class ModelCheckpoint(LightningModelCheckpoint):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.save_last == "link":
            raise ValueError(
                "ModelCheckpoint: save_last='link' links last.ckpt to the latest top-k checkpoint, which is not the "
                "latest weights. Fix: set save_last: true (callbacks.ModelCheckpoint writes the latest weights there)."
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._save_last_if_behind(trainer)

    def _save_last_if_behind(self, trainer: L.Trainer) -> None:
        # _should_skip_saving_checkpoint is also true when this step is saved already (top-k and last together)
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
