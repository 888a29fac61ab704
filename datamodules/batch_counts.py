"""How many sequences and target tokens a batch of ours holds: how Lightning's ThroughputMonitor counts them: sequences, and the target tokens the loss is taken over.

    callbacks:
      - class_path: lightning.pytorch.callbacks.ThroughputMonitor
        init_args: {batch_size_fn: callbacks.sequences, length_fn: callbacks.target_tokens, window_size: 10}

logs ``train/device/samples_per_sec`` and ``train/device/items_per_sec`` (target tokens/s), and FLOP/s and MFU
where the model has ``flops_per_batch`` (the zoo's models do) and the device a known peak (GPUs).
"""

from __future__ import annotations


def sequences(batch) -> int:
    """Sentence pairs of a translation batch, windows of an ``(inputs, targets)`` batch."""
    return len(batch["tgt_out"]) if isinstance(batch, dict) else len(batch[-1])


def target_tokens(batch) -> int:
    """The non-pad targets of a translation batch (datamodules.collate), all targets of an ``(inputs, targets)`` one."""
    if isinstance(batch, dict):
        return int((~batch["tgt_pad_mask"]).sum())
    return int(batch[-1].numel())
