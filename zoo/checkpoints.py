"""Loading checkpoints written by `zoo fit`, safely: no arbitrary unpickling, clear errors."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import lightning as L
import torch


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or not a zoo model; the message says how to fix it."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, read with ``weights_only=True`` (tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}. Fix: pass the path of a .ckpt file written by `zoo fit`.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        raise CheckpointError(
            f"cannot read checkpoint {path} (truncated, corrupt, or not a checkpoint): {error}. "
            f"Fix: use another checkpoint of the run (e.g. last.ckpt) or train again."
        ) from error


def model_class(checkpoint: dict[str, Any], path: str | Path) -> type[L.LightningModule]:
    """The model class named in the checkpoint's hyperparameters; only classes from ``zoo`` are accepted."""
    class_path = checkpoint.get("hyper_parameters", {}).get("_class_path")
    if not class_path:
        raise CheckpointError(
            f"{path} does not name its model class (it was not written by `zoo fit`). "
            f"Fix: load it with the class itself, e.g. zoo.CharRNN.load_from_checkpoint(path)."
        )
    module_name, _, class_name = class_path.rpartition(".")
    if module_name != "zoo" and not module_name.startswith("zoo."):
        raise CheckpointError(f"{path} names model class {class_path!r}, which is not a zoo model.")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, L.LightningModule)):
        raise CheckpointError(f"{path} names model class {class_path!r}, which does not exist in this version.")
    return cls


def load_model(path: str | Path) -> L.LightningModule:
    """A model from a `zoo fit` checkpoint, in eval mode on the CPU; needs no DataModule or config."""
    return model_from_checkpoint(read_checkpoint(path), path).eval()


def init_args_of(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The model's constructor arguments saved in a checkpoint (Lightning's "_"-prefixed entries left out)."""
    return {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}


def model_from_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> L.LightningModule:
    """The model a checkpoint dict (read by ``read_checkpoint`` from ``path``) describes, with its weights."""
    model = model_class(checkpoint, path)(**init_args_of(checkpoint))
    model.load_state_dict(checkpoint["state_dict"])  # strict: a shape or key mismatch is an error
    return model


class ChecksCheckpointClass:
    """Mixed into zoo models: ``Model.load_from_checkpoint`` refuses, with a clear error, a checkpoint
    of another model class (Lightning would fail later on missing or unexpected arguments)."""

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        class_path = read_checkpoint(checkpoint_path).get("hyper_parameters", {}).get("_class_path")
        if class_path and class_path.rpartition(".")[2] != cls.__name__:
            raise CheckpointError(
                f"{checkpoint_path} holds a {class_path}, not a {cls.__name__}. Fix: load it with "
                f"{class_path.rpartition('.')[2]}.load_from_checkpoint, or with zoo.load_model (any zoo model)."
            )
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
