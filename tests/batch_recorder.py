"""Recorders for the distributed tests: what each rank trained on, the validation metrics it logged, and
which process wrote each checkpoint."""

import copy
import json
import os
from pathlib import Path

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DistributedSampler

from zoo.hub.atomic_checkpoint_io import AtomicCheckpointIO


class RecordBatches(Callback):
    """Writes ``<folder>/rank<r>.json``: every training batch's rows (token ids, pads dropped) and
    padded size, and the last validation metrics."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.batches: list[dict] = []
        self.epoch_indices: list[list] = []  # per epoch, the dataset items a DistributedSampler gave this rank
        self.val_metrics: dict[str, float] = {}

    def on_train_epoch_start(self, trainer, pl_module):
        sampler = trainer.train_dataloader.sampler
        if isinstance(sampler, DistributedSampler):  # a copy: a finished pass advances a zoo sampler's epoch
            self.epoch_indices.append(list(copy.copy(sampler)))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if isinstance(batch, dict):  # translation: source rows without pads, padded size of the longer side
            rows = [row[~pad].tolist() for row, pad in zip(batch["src"], batch["src_pad_mask"])]
            cost = len(rows) * max(batch["src"].shape[1], batch["tgt_out"].shape[1])
        else:
            rows, cost = batch[0].tolist(), batch[0].numel()
        self.batches.append({"rows": rows, "cost": cost})

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.val_metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if trainer.state.fn == TrainerFn.VALIDATING:  # `zoo validate` has no fit end
            self.write(trainer)

    def on_fit_end(self, trainer, pl_module):
        self.write(trainer)

    def write(self, trainer):
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "cache_written": list(getattr(trainer.datamodule, "written", [])),  # what this process wrote there
            "batches": self.batches,
            "epoch_indices": self.epoch_indices,
            "val": self.val_metrics,
        }
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


class RecordSaves(AtomicCheckpointIO):
    """zoo's checkpoint writer, appending ``<pid> <path>`` to ``log`` for every checkpoint it writes."""

    def __init__(self, log: str):
        super().__init__()
        self.log = Path(log)

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        super().save_checkpoint(checkpoint, path, storage_options)
        with self.log.open("a") as file:
            file.write(f"{os.getpid()} {path}\n")
