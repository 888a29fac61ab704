"""TokensPerSecond: logs training throughput as target tokens per second of wall-clock time."""

from __future__ import annotations

import time

from lightning.pytorch.callbacks import Callback


class TokensPerSecond(Callback):
    """Logs ``train/tokens_per_s``, measured from one batch start to the next so that data
    loading, the optimizer step and logging all count. Tokens are real target tokens: all of
    ``targets`` in an ``(inputs, targets)`` batch, the non-pad ones of a translation batch.
    """

    def __init__(self):
        self._last_start: float | None = None
        self._tokens = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last_start = None  # validation and epoch boundaries are not training time

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last_start is not None and self._tokens:
            pl_module.log("train/tokens_per_s", self._tokens / (now - self._last_start), on_step=True)
        self._last_start, self._tokens = now, count_target_tokens(batch)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._last_start = None


def count_target_tokens(batch) -> int:
    if isinstance(batch, dict):  # datamodules.collate.TranslationBatch
        return int((~batch["tgt_pad_mask"]).sum())
    return int(batch[-1].numel())
