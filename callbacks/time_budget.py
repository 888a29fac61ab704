"""TimeBudgetDecay: learning rates that reach zero exactly when a run's wall-clock budget ends.

A run given ``trainer.max_time`` stops when its time is up, whatever its schedule says: with an
inverse-square-root or constant rate it stops mid-stride, never annealed. This callback scales
every optimizer's learning rate by a factor of the time left: 1 until the last ``decay_fraction``
of the budget, then linearly down to 0 at its end (the "decay" phase of warm-up-stable-decay
schedules). It multiplies whatever the model's own scheduler sets (warm-up included), so it
works with any model whose scheduler computes the rate from the step count (LambdaLR and the
like, as the zoo's do; a chained scheduler such as ExponentialLR would multiply the scaled rate
again); the time is Lightning's Timer's, which a resumed run restores.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback, Timer

from datamodules.checks import require_in


class TimeBudgetDecay(Callback):
    def __init__(self, decay_fraction: float = 0.3):
        require_in("(0, 1]", decay_fraction=decay_fraction)  # the budget's share to decay over
        self.decay_fraction = decay_fraction

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.factor(trainer)  # a trainer without max_time is refused before the first step

    def factor(self, trainer: L.Trainer) -> float:
        """1 before the decay phase, then the share of the decay phase still left."""
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        remaining = timer.time_remaining() if timer is not None else None
        if remaining is None:
            raise ValueError(
                "TimeBudgetDecay decays the learning rate over a time budget, but the trainer has none. "
                "Fix: set trainer.max_time (e.g. --trainer.max_time 00:00:25:00), or remove the callback."
            )
        budget = timer.time_elapsed() + remaining
        return min(1.0, max(remaining, 0.0) / (self.decay_fraction * budget))

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        factor = self.factor(trainer)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                # A scheduler that set a new rate since our last change gives the base; otherwise our last base
                # stands (scaling our own product again would compound). Both live in the optimizer's state.
                if group.get("lr_set_by_budget") != group["lr"]:
                    group["lr_before_budget"] = group["lr"]
                group["lr"] = group["lr_set_by_budget"] = group["lr_before_budget"] * factor
