"""Checkpoint averaging: the mean of a run's last few snapshots, a cheap stand-in for annealing (Vaswani et al.)."""

from __future__ import annotations

from pathlib import Path

import torch

from zoo.hub.atomic_writes import atomic_file
from zoo.hub.checkpoints import CheckpointError, read_checkpoint, saved_class_path
from zoo.models.registry import model_class


def average_checkpoints(paths: list[str | Path], out: str | Path) -> Path:
    """Write a checkpoint whose weights are the element-wise mean of ``paths`` (same model, same
    hyperparameters); integer buffers come from the last one. Loads like any `zoo fit` checkpoint."""
    if not paths:
        raise CheckpointError("no checkpoints to average. Fix: pass at least one .ckpt file.")
    checkpoints = [read_checkpoint(path) for path in paths]
    last = checkpoints[-1]
    model_class(saved_class_path(last), paths[-1])  # a zoo model, so the average loads with zoo.load_model
    for path, checkpoint in zip(paths, checkpoints):
        if checkpoint.get("hyper_parameters") != last.get("hyper_parameters"):
            raise CheckpointError(
                f"{path} has other hyperparameters than {paths[-1]}: only snapshots of one run can be averaged."
            )
    averaged = {}
    for name, value in last["state_dict"].items():
        if value.is_floating_point():
            averaged[name] = torch.stack([c["state_dict"][name].float() for c in checkpoints]).mean(0).to(value.dtype)
        else:
            averaged[name] = value
    # The last snapshot's place in training and Lightning version (so Model.load_from_checkpoint works); no
    # optimizer or loop state, which would belong to the last snapshot alone.
    kept = {key: last[key] for key in ("epoch", "global_step", "pytorch-lightning_version") if key in last}
    averaged = {
        **kept,
        "state_dict": averaged,
        "hyper_parameters": last["hyper_parameters"],
        "averaged_checkpoints": len(checkpoints),
    }
    with atomic_file(out) as partial:
        torch.save(averaged, partial)
    return Path(out)
