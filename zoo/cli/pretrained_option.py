"""`zoo fit|validate|test --pretrained SPEC`: a run that starts from a trained model instead of random weights.

fit fine-tunes: a new run (new optimizer, schedule, step counter and W&B run) whose model takes the parent's class,
sizes and weights, and whose DataModule reads the new data with the parent's tokenizers or vocabulary. validate and
test score the pretrained model on the config's data. The config may set what a fine-tuning run chooses for itself
(learning rate, warm-up, dropout, label smoothing, decoding; zoo.tasks.fine_tuning.FINE_TUNING_ARGUMENTS); a value
it sets for anything else that differs from the parent's (a size, the class, the tokenizer) is an error naming both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import yaml
from jsonargparse import Namespace

from datamodules.text_tokenizer import tokenizer_kind
from zoo.hub.checkpoints import CheckpointError
from zoo.models.registry import public_class_path
from zoo.tasks.fine_tuning import architecture

HELP = (
    "start from a trained model: a registered name (zoo list), a bundle folder, a .ckpt file or a URL. fit fine-tunes "
    "it on the config's data (its class, sizes and tokenizers; a new optimizer, schedule and run); validate and test "
    "score it. With --ckpt_path, fit resumes a fine-tuning run of this model."
)
FIX_SIZES = "Fix: leave it out of the config (a fine-tuned model keeps its parent's), or train a new model without --pretrained."


def option_in(args: list[str], option: str) -> str | None:
    """The value of the last ``option`` (e.g. --pretrained) on a command line, as the parser will read it, or None."""
    value = None
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(f"{option}="):
            value = arg.partition("=")[2]
    return value


def check_model_class_given(args: list[str]) -> None:
    """A fine-tuning config leaves the model's class to --pretrained; run without it, jsonargparse would answer
    with its whole usage and a union error. Refuse it in one line naming the fix (the config's header names the
    parent it was written for)."""
    if any(arg == "--model" or arg.startswith(("--model=", "--model.class_path")) for arg in args):
        return
    configs = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in ("--config", "-c")]
    configs += [arg.partition("=")[2] for arg in args if arg.startswith("--config=")]
    read = {}
    for path in configs:
        try:
            read[path] = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            return  # the parser reports an unreadable config itself
    read = {path: config for path, config in read.items() if isinstance(config, dict)}
    models = {path: config.get("model") for path, config in read.items() if isinstance(config.get("model"), dict)}
    if any("pretrained" in config for config in read.values()) or any("class_path" in m for m in models.values()):
        return
    if models:
        raise ValueError(
            f"{next(iter(models))} sets model options but no model class: it is a fine-tuning config. Fix: add --pretrained "
            "NAME (zoo list; the config's first lines name the model it was written for), or set model.class_path."
        )


def with_model_class(args: list[str], class_path: str) -> list[str]:
    """``args`` with a default model class right after the subcommand, so a config may leave the model out; a
    config (or flag) that names a class comes later and wins (and is then checked against the parent's)."""
    at = 1 if args[0] in ("fit", "validate", "test") else 0  # after the subcommand, if there is one
    return [*args[:at], "--model", class_path, *args[at:]]


def settle_config(config: Namespace, explicit: Namespace | None, parent: L.LightningModule, spec: str) -> None:
    """Give the run's config the parent's class, sizes and tokenizers or vocabulary, refusing what contradicts them.
    ``explicit``: the values the user's config files and flags set (no defaults)."""
    explicit = explicit or Namespace()
    name = type(parent).__name__
    chosen = config.model.class_path.rpartition(".")[2]
    if chosen != name:
        raise CheckpointError(
            f"the config's model is a {chosen}, but --pretrained {spec} is a {name}: fine-tuning keeps the parent's "
            f"class. Fix: set model.class_path to {public_class_path(type(parent))} or leave the model's class out."
        )
    given = _values(explicit, "model.init_args")
    for key, value in architecture(parent).items():
        if key in given and given[key] != value:
            raise CheckpointError(
                f"the config sets model {key} {given[key]!r}, but --pretrained {spec} has {key} {value!r}. {FIX_SIZES}"
            )
        config.model.init_args[key] = value
    data, given_data = config.data.init_args, _values(explicit, "data.init_args")
    if "tokenizers" in data and hasattr(parent, "tokenizers"):
        _check_tokenizer_settings(given_data, parent, spec)
        data.tokenizers = parent.tokenizers  # objects: cleared after instantiation (see ZooCLI.instantiate_classes)
    elif "vocab" in data and getattr(parent, "vocab", None) is not None:
        if given_data.get("vocab") is not None and given_data["vocab"] != parent.vocab.chars:
            raise CheckpointError(f"the config sets data vocab, but --pretrained {spec} has its own. {FIX_SIZES}")
        data.vocab = parent.vocab.chars
    else:
        raise CheckpointError(
            f"{config.data.class_path} cannot read text for a {name} (it takes neither tokenizers nor a vocab). "
            f"Fix: use the DataModule the {name} was trained with ({(getattr(parent, 'training_data', None) or {})})."
        )


def _check_tokenizer_settings(given: dict[str, Any], parent: L.LightningModule, spec: str) -> None:
    source, target = parent.tokenizers
    theirs = {
        "tokenizer": tokenizer_kind(target),
        "vocab_size": target.get_vocab_size(),
        "joint_vocab": source.to_str() == target.to_str(),
    }
    for key, value in theirs.items():
        if key in given and given[key] != value:
            raise CheckpointError(
                f"the config sets data {key} {given[key]!r}, but --pretrained {spec}'s tokenizers have {key} "
                f"{value!r}: the new data is read with the parent's tokenizers. Fix: leave {key} out of the config."
            )


def _values(namespace: Namespace, key: str) -> dict[str, Any]:
    found = namespace.get(key) if key.split(".")[0] in namespace else None
    return dict(vars(found)) if isinstance(found, Namespace) else {}
