"""Where training stands in its epoch, for exact mid-epoch resume, on the same number of processes or another.

Lightning saves a DataModule's ``state_dict`` in every checkpoint and hands it back to
``load_state_dict`` on resume, before the training loader is built. The DataModules store
this position and start their first resumed epoch after the batches already trained on.
It comes from Lightning's own progress counters rather than from the loader, because
Lightning fetches one batch ahead: a loader's count would include a batch not yet used.

Those counters count one rank's batches. On another number of processes an epoch has
another number of batches per rank, so a resumed run restates them in its own terms
(``restate_progress``): Lightning then numbers the resumed batches, runs validation and
ends the epoch as the new run counts, while ``global_step`` (hence the learning-rate
schedule) goes on from where it was.
"""

from __future__ import annotations

import math

import lightning as L


def training_position(trainer: L.Trainer | None) -> dict[str, int]:
    """``{"epoch", "batches_done"}`` of the running fit, in this rank's batches (a checkpoint written at a
    batch's end counts that batch); empty outside training."""
    if trainer is None or not trainer.training:
        return {}
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    epoch = trainer.current_epoch
    if math.isfinite(trainer.num_training_batches) and done >= trainer.num_training_batches:
        return {"epoch": epoch + 1, "batches_done": 0}  # saved on the epoch's last batch
    return {"epoch": epoch, "batches_done": done}


def dealt(remaining: int, rank: int, world_size: int, even: bool) -> range:
    """Positions, in the rest of an epoch's order (``remaining`` items or batches), of ``rank``'s share: every
    ``world_size``-th from the rank, as a fresh epoch is dealt. ``even`` (training) first trims the rest to a
    multiple of ``world_size``, so every rank takes as many steps; evaluation gives each item to exactly one rank."""
    usable = remaining - remaining % world_size if even else remaining
    return range(rank, usable, world_size)


def ceil_div(n: int, d: int) -> int:
    """Batches of ``d`` that ``n`` items make, the last one possibly short."""
    return -(-n // d)


def stateful_world_refusal(saved_world: int, world: int) -> str:
    """Why a stateful run stopped mid-epoch cannot resume on another number of processes, and the fix."""
    return (
        f"this checkpoint stopped mid-epoch in a stateful run on {saved_world} process(es), whose carried hidden "
        f"states belong to that run's text streams; on {world} the text is cut into other streams, so it cannot "
        f"continue exactly. Fix: resume on {saved_world} process(es) (--trainer.devices x --trainer.num_nodes), or "
        f"start a new run from its weights with --pretrained CHECKPOINT."
    )


def restate_progress(trainer: L.Trainer | None, batches_done: int) -> None:
    """Make Lightning's restored count of this epoch's batches ``batches_done`` (this run's count: the epoch's
    batches per rank less those the resumed pass has left; all of them where the saved epoch had ended). Every
    counter moves by the same amount, so Lightning's reading of where in a batch the checkpoint was written holds.
    """
    if trainer is None:
        return
    current = trainer.fit_loop.epoch_loop.batch_progress.current
    if current.processed == 0:  # saved before the epoch's first batch: nothing to restate
        return
    shift = batches_done - current.processed
    current.ready += shift
    current.started += shift
    current.processed += shift
    current.completed += shift
