"""HiddenStateCallback: truncated backpropagation through time for Lightning 2.

Lightning 2 removed ``truncated_bptt_steps``. With stateful data (row i of batch t+1
continues row i of batch t) this callback gives the same training: the recurrent state
flows forward across batches while gradients stop at batch boundaries.

Contract with the LightningModule: an attribute (``hidden_state`` by default) holds the
carried state: None, a tensor, or a nest (tuple, list, dict, dataclass) of tensors. The
module's training_step and validation_step start from it and assign their final state
back to it. This callback then:
  - ``preserve``: detaches the state after every training batch, so the next batch starts
    where this one ended but backpropagates only through its own window;
  - ``reset``: clears it before every batch (stateless training);
  - in both modes clears it at every epoch start, and runs validation on a state of its
    own from zero, restoring the training state afterwards.
Gradient accumulation and clipping need nothing special: each batch still runs its own
backward pass, and the state is detached after it. Checkpoints carry the training state,
so a run resumed mid-epoch continues from the state it had (with data that continues
where it stopped, such as CharDataModule's stateful streams). Under DDP each process's state
is saved (gathered by rank) and each takes its own back; a mid-epoch state cannot move to
another number of processes, whose streams are other text, and is refused.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning_utilities.core.apply_func import apply_to_collection

from datamodules.training_position import stateful_world_refusal, training_position

MODE_FOR_DATA = {"stateful": "preserve", "stateless": "reset"}  # CharDataModule's mode -> the callback's


class HiddenStateCallback(Callback):
    def __init__(self, mode: Literal["preserve", "reset"] = "preserve", attribute: str = "hidden_state"):
        if mode not in ("preserve", "reset"):
            raise ValueError(f"mode must be 'preserve' or 'reset', got {mode!r}")
        self.mode = mode
        self.attribute = attribute
        self._training_state: Any = None
        self._in_validation = False

    @classmethod
    def for_data(cls, data_mode: str | None) -> HiddenStateCallback:
        """The callback a data layout needs (for scoring a model whose config is not at hand)."""
        return cls(MODE_FOR_DATA.get(data_mode, "reset"))

    def _set(self, module: L.LightningModule, state: Any) -> None:
        setattr(module, self.attribute, state)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not hasattr(pl_module, self.attribute):
            raise AttributeError(
                f"{type(pl_module).__name__} has no attribute {self.attribute!r} to carry a hidden state in. "
                f"Fix: set self.{self.attribute} = None in __init__, start each step from it and assign "
                f"the final state back (see callbacks/hidden_state.py), or pass attribute=<your name>."
            )
        data_mode = getattr(trainer.datamodule, "mode", None)
        expected = MODE_FOR_DATA.get(data_mode)
        if expected and expected != self.mode:
            warnings.warn(
                f"HiddenStateCallback(mode={self.mode!r}) with data.mode {data_mode!r}: "
                f"mode {expected!r} is what this data layout needs."
            )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._set(pl_module, None)  # (Lightning skips this hook when it resumes mid-epoch)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # During validation the attribute holds validation's state; the training state is aside.
        state = self._training_state if self._in_validation else getattr(pl_module, self.attribute)
        if self.mode == "reset" or training_position(trainer).get("batches_done") == 0:
            state = None  # nothing carries over: stateless, or written at an epoch's end (the next starts from zero)
        if trainer.world_size > 1:
            # Each process carries its own streams' state; one process writes the file. So all of them are kept,
            # stacked by rank (every rank saves, so the gather is collective), and each rank takes back its own.
            ranks = trainer.strategy.all_gather(torch.tensor(int(state is not None), device=pl_module.device))
            state = pl_module.all_gather(state) if bool(ranks.all()) else None
            checkpoint["carried_hidden_state_ranks"] = trainer.world_size
        checkpoint["carried_hidden_state"] = state

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state, ranks = checkpoint.get("carried_hidden_state"), checkpoint.get("carried_hidden_state_ranks", 1)
        if state is not None and ranks != trainer.world_size:
            raise ValueError(stateful_world_refusal(ranks, trainer.world_size))
        if state is not None and ranks > 1:
            state = apply_to_collection(state, torch.Tensor, lambda stacked: stacked[trainer.global_rank].clone())
        self._set(pl_module, state)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.mode == "reset":
            self._set(pl_module, None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.mode == "preserve":
            state = getattr(pl_module, self.attribute)
            self._set(pl_module, apply_to_collection(state, torch.Tensor, torch.Tensor.detach))

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._training_state, self._in_validation = getattr(pl_module, self.attribute), True
        self._set(pl_module, None)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.mode == "reset":
            self._set(pl_module, None)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._set(pl_module, self._training_state)
        self._training_state, self._in_validation = None, False
