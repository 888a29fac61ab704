"""Loading checkpoints written by `zoo fit`, safely: no arbitrary unpickling, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

import zoo
import zoo.modules.rnn_state  # noqa: F401  (registers RNNState, carried in char-RNN checkpoints, as safe to load)
from zoo.modules.renamed_weights import optimizer_state_in_current_order, rename_old_weights


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


def model_class(class_path: str | None, path: str | Path) -> type[L.LightningModule]:
    """The model class ``class_path`` (read from the file ``path``) names; only zoo's models are accepted."""
    if not class_path:
        raise CheckpointError(
            f"{path} does not name its model class (it was not written by `zoo fit`). "
            f"Fix: load it with the class itself, e.g. zoo.CharRNN.load_from_checkpoint(path)."
        )
    module_name, _, class_name = class_path.rpartition(".")
    if module_name != "zoo" and not module_name.startswith("zoo."):
        raise CheckpointError(f"{path} names model class {class_path!r}, which is not a zoo model.")
    # By name among the public models, whatever module it was written from: files from before zoo/ had
    # subpackages say zoo.char_rnn.CharRNN, newer ones zoo.CharRNN.
    if class_name not in zoo.MODELS:
        raise CheckpointError(f"{path} names model class {class_path!r}, which does not exist in this version.")
    return getattr(zoo, class_name)


def public_class_path(cls: type) -> str:
    """How checkpoints and bundles name a model class: ``zoo.<Name>``, which survives moves inside zoo/."""
    return f"zoo.{cls.__name__}" if cls.__name__ in zoo.MODELS else f"{cls.__module__}.{cls.__qualname__}"


def load_model(path: str | Path) -> L.LightningModule:
    """A model from a `zoo fit` checkpoint, in eval mode on the CPU; needs no DataModule or config."""
    return model_from_checkpoint(read_checkpoint(path), path).eval()


def init_args_of(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The model's constructor arguments saved in a checkpoint (Lightning's "_"-prefixed entries left out)."""
    return {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}


def model_from_checkpoint(
    checkpoint: dict[str, Any], path: str | Path, cls: type[L.LightningModule] | None = None, **overrides
) -> L.LightningModule:
    """The model a checkpoint dict (read by ``read_checkpoint`` from ``path``) describes, with its weights: of the
    class the checkpoint names, or ``cls``; ``overrides`` replace saved constructor arguments."""
    cls = cls or model_class(saved_class_path(checkpoint), path)
    model = build_model(cls, {**init_args_of(checkpoint), **overrides}, path)
    check_compatible(checkpoint, model, path)  # a clear message for weights of another shape
    model.load_state_dict(checkpoint["state_dict"])  # strict: a shape or key mismatch is an error
    # The DataModule's arguments (source, pair, ...) for model cards; None in checkpoints from before they were kept.
    model.training_data = checkpoint.get("datamodule_hyper_parameters")
    return model


# Arguments that files from older versions hold and this one reads elsewhere: the special token ids (now read from
# the tokenizer, which those files also hold).
RETIRED_ARGUMENTS = ("pad_id", "bos_id", "eos_id")


def build_model(cls: type[L.LightningModule], init_args: dict[str, Any], source: str | Path) -> L.LightningModule:
    """``cls(**init_args)``, where a wrong argument (a hand-edited or newer file) is a CheckpointError naming it."""
    try:
        return cls(**{k: v for k, v in init_args.items() if k not in RETIRED_ARGUMENTS})
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


class ChecksCheckpointClass:
    """Mixed into zoo models: ``Model.load_from_checkpoint`` reads the file once, safely (``read_checkpoint``), and
    refuses with a clear error a checkpoint of another model class, vocabulary or size."""

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, **overrides):
        """The model saved at ``checkpoint_path``, which must be a ``cls``; ``overrides`` replace saved constructor
        arguments (as in Lightning); ``map_location``: the device to put it on (default: the CPU)."""
        checkpoint = read_checkpoint(checkpoint_path)
        fix = "Fix: load it with its own class's load_from_checkpoint, or with zoo.load_model (any zoo model)."
        check_class(checkpoint, cls.__name__, checkpoint_path, fix)
        model = model_from_checkpoint(checkpoint, checkpoint_path, cls, **overrides)
        return model if map_location is None else model.to(map_location)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Lightning restores weights right after this hook (fit, validate, test with ckpt_path): refuse a
        checkpoint of another model, vocabulary or size here, with a message instead of a shape traceback."""
        check_compatible(checkpoint, self, "the checkpoint")
        optimizer_state_in_current_order(checkpoint, self)
