"""Checkpoints written by `zoo fit`: read safely (no arbitrary unpickling), built into their model, and checked
before a run continues from one (same model class, data and sizes), each with an error that says what to do.

Which class a file may build is the registry's decision (zoo/models/registry.py); this module takes the class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

import zoo.modules.rnn_state  # noqa: F401  (registers RNNState, carried in char-RNN checkpoints, as safe to load)
from zoo.modules.renamed_weights import rename_old_weights


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
        cause = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        if "Weights only load failed" in cause:  # torch's paragraph on weights_only, for any unexpected bytes
            cause = "it is not a plain checkpoint of tensors and data (other objects are never unpickled: that could run code)"
        raise CheckpointError(
            f"cannot read checkpoint {path} (truncated, corrupt, or not a checkpoint): {cause}. "
            f"Fix: use another checkpoint of the run (e.g. last.ckpt) or train again."
        ) from error


def saved_class_path(checkpoint: dict[str, Any]) -> str | None:
    """The model class a `zoo fit` checkpoint names (LightningCLI keeps it in the hyperparameters)."""
    return checkpoint.get("hyper_parameters", {}).get("_class_path")


def init_args_of(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The model's constructor arguments saved in a checkpoint (Lightning's "_"-prefixed entries left out)."""
    return {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}


def model_from_checkpoint(
    checkpoint: dict[str, Any], path: str | Path, cls: type[L.LightningModule], **overrides
) -> L.LightningModule:
    """The ``cls`` a checkpoint dict (read by ``read_checkpoint`` from ``path``) describes, with its weights;
    ``overrides`` replace saved constructor arguments."""
    model = build_model(cls, {**init_args_of(checkpoint), **overrides}, path)
    check_compatible(checkpoint, model, path)  # a clear message for weights of another shape
    model.load_state_dict(checkpoint["state_dict"])  # strict: a shape or key mismatch is an error
    # The DataModule's arguments (source, pair, ...) for model cards; None in checkpoints from before they were kept.
    model.training_data = checkpoint.get("datamodule_hyper_parameters")
    model.parent = checkpoint.get("parent")  # the model it was fine-tuned from (zoo.tasks.fine_tuning), if any
    return model


# Arguments that files from older versions hold and this one reads elsewhere: the special token ids (now read from
# the tokenizer, which those files also hold); and those renamed since (CharRNN's tie_weights: one name for one idea).
RETIRED_ARGUMENTS = ("pad_id", "bos_id", "eos_id")
RENAMED_ARGUMENTS = {"tie_weights": "tie_embeddings"}


def build_model(cls: type[L.LightningModule], init_args: dict[str, Any], source: str | Path) -> L.LightningModule:
    """``cls(**init_args)``, where a wrong argument (a hand-edited or newer file) is a CheckpointError naming it."""
    try:
        return cls(**{RENAMED_ARGUMENTS.get(k, k): v for k, v in init_args.items() if k not in RETIRED_ARGUMENTS})
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"{source} describes a {cls.__name__} this version cannot build: {error}. "
            f"Fix: export or save it again with this version of seq-zoo."
        ) from error


# Hyperparameters the CLI links from the DataModule: a checkpoint whose values differ was trained on other data.
DATA_LINKED = (
    "vocab",
    "vocab_size",
    "src_vocab_size",
    "tgt_vocab_size",
    "src_tokenizer",
    "tgt_tokenizer",
)
FIX_RESUME = "Fix: run with the settings it was trained with, or start a new run without --ckpt_path."


def check_class(checkpoint: dict[str, Any], class_path: str, path: str | Path, fix: str = FIX_RESUME) -> None:
    """Refuse a checkpoint of another model class than ``class_path`` (compared by class name, so that
    ``zoo.CharRNN`` and ``zoo.models.char_rnn.CharRNN`` are one class)."""
    saved = saved_class_path(checkpoint)
    if saved and saved.rpartition(".")[2] != class_path.rpartition(".")[2]:
        raise CheckpointError(f"{path} holds a {saved}, not a {class_path}. {fix}")


def check_compatible(checkpoint: dict[str, Any], model: L.LightningModule, path: str | Path) -> None:
    """Refuse, naming the difference, a checkpoint that ``model`` cannot continue from: another model class,
    another vocabulary or tokenizer (even of the same size), or weights of other shapes."""
    check_class(checkpoint, type(model).__name__, path)
    saved, ours = checkpoint.get("hyper_parameters", {}), dict(model.hparams)
    for key in DATA_LINKED:
        if saved.get(key) is not None and ours.get(key) is not None and saved[key] != ours[key]:
            raise CheckpointError(
                f"{path} was trained on other data: its {key} differs from this run's data "
                f"({_difference(key, saved[key], ours[key])}). Fix: use the data settings it was trained with "
                f"(source, tokenizer, vocab_size), or start a new run without --ckpt_path."
            )
    weights = rename_old_weights(dict(checkpoint.get("state_dict", {})), getattr(model, "old_weight_names", []))
    own = model.state_dict()
    clash = sorted(set(weights) ^ set(own)) or [k for k in weights if weights[k].shape != own[k].shape]
    if clash:
        settings = [f"{k} {saved[k]!r} there, {ours[k]!r} here" for k in saved if k in ours and saved[k] != ours[k]]
        raise CheckpointError(
            f"{path} holds weights of another shape than this run's model ({clash[0]}"
            f"{'; ' + ', '.join(settings) if settings else ''}). {FIX_RESUME}"
        )


def _difference(key: str, theirs: Any, ours: Any) -> str:
    if key == "vocab":
        new, gone = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        return f"{len(theirs)} characters there, {len(ours)} here; new here: {''.join(new)!r}, missing here: {''.join(gone)!r}"
    if isinstance(theirs, str) and len(theirs) > 40:
        return "another tokenizer"
    return f"{theirs!r} there, {ours!r} here"
