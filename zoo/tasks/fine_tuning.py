"""Fine-tuning: a new model starts from a trained one (its parent), may freeze parts of itself, and remembers
where it came from.

    parent = zoo.load_pretrained("char-rnn-shakespeare")
    data = CharDataModule("my-text.txt", vocab=parent.vocab, extend_vocab=True)
    model = zoo.CharRNN(vocab_size=data.vocab_size, vocab=data.vocab, **architecture(parent))
    start_from(model, parent)          # the parent's weights; rows for the new characters
    L.Trainer(...).fit(model, data)

``zoo fit --pretrained NAME`` does the same from a config (zoo/cli/pretrained_option.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.hub.bundles import CHECKSUMS, sha256_of
from zoo.hub.checkpoints import DATA_LINKED, CheckpointError

# Constructor arguments a fine-tuning run may set for itself: how it trains and decodes, not what the weights mean.
# Every other argument (sizes, cell, attention, positions, tying) is the parent's.
FINE_TUNING_ARGUMENTS = frozenset(
    {
        "dropout",
        "learning_rate",
        "warmup_steps",
        "label_smoothing",
        "teacher_forcing",
        "test_beam_size",
        "max_len_a",
        "max_len_b",
        "max_source_len",
    }
)


def architecture(parent: nn.Module) -> dict[str, Any]:
    """The parent's constructor arguments a child must share: all but the training settings and the data's."""
    return {
        key: value
        for key, value in parent.hparams.items()
        if key not in FINE_TUNING_ARGUMENTS and key not in DATA_LINKED and not key.startswith("_")
    }


def start_from(model: nn.Module, parent: nn.Module) -> nn.Module:
    """Copy ``parent``'s weights into ``model`` (same class and sizes) and record the parent in ``model.parent``.

    A char model whose vocabulary extends the parent's (``CharDataModule(extend_vocab=True)``) keeps the parent's
    row for every character it knows, in the embedding and the output layer (tied or not); the rows of new
    characters start as the mean of the known rows: a new character starts as an average one, and the known
    characters' logits are the parent's (so are their probabilities relative to each other). Any other difference
    of shape is an error naming the weight."""
    if type(model) is not type(parent):
        raise CheckpointError(
            f"cannot start a {type(model).__name__} from a {type(parent).__name__}: fine-tuning keeps the parent's "
            f"class. Fix: set the model's class_path to the parent's, or leave the model out of the config."
        )
    rows = _vocabulary_rows(getattr(parent, "vocab", None), getattr(model, "vocab", None))
    ours, theirs = model.state_dict(), parent.state_dict()
    if set(ours) != set(theirs):
        different = sorted(set(ours) ^ set(theirs))[0]
        raise CheckpointError(f"the parent's weights do not match this {type(model).__name__}'s ({different}).")
    with torch.no_grad():
        for key, weight in ours.items():
            source = theirs[key].to(weight.dtype)
            if source.shape == weight.shape:
                weight.copy_(source)
            elif rows is not None and source.shape[1:] == weight.shape[1:] and source.shape[0] == len(rows[0]):
                known, new = rows
                weight[known] = source
                weight[new] = source.mean(dim=0)
            else:
                raise CheckpointError(
                    f"the parent's {key} has shape {tuple(source.shape)}, this model's {tuple(weight.shape)}: "
                    f"fine-tuning keeps the parent's sizes. Fix: leave the sizes out of the config."
                )
    model.parent = lineage(parent)
    return model


def _vocabulary_rows(parent_vocab, vocab) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(ids in ``vocab`` of the parent's characters in the parent's order, ids of the characters only ``vocab``
    has), for a vocabulary that extends the parent's; None when they are the same or not char vocabularies."""
    if parent_vocab is None or vocab is None or parent_vocab.chars == vocab.chars:
        return None
    missing = vocab.unknown_chars(parent_vocab.chars)
    if missing:
        raise CheckpointError(
            f"the vocabulary lacks {len(missing)} of the parent's characters ({missing[:20]!r}): fine-tuning may add "
            f"characters, not remove them. Fix: pass vocab=parent.vocab to the DataModule (with extend_vocab=True)."
        )
    known = torch.tensor([vocab.index[c] for c in parent_vocab.chars])
    new = torch.tensor([vocab.index[c] for c in parent_vocab.unknown_chars(vocab.chars)], dtype=torch.long)
    return known, new


def lineage(parent: nn.Module) -> dict[str, Any]:
    """What a child records of its parent: where it was loaded from, the digest of its files (a bundle's SHA256SUMS,
    or the checkpoint file), its class, its training data, and its own parent."""
    origin = dict(getattr(parent, "loaded_from", None) or {})
    path = origin.get("path")
    if path and not origin.get("sha256"):
        origin["sha256"] = files_digest(Path(path))
    return {
        "name": origin.get("name"),
        "sha256": origin.get("sha256"),
        "class_path": f"zoo.{type(parent).__name__}",
        "data": getattr(parent, "training_data", None),
        "parent": getattr(parent, "parent", None),
    }


def files_digest(path: Path) -> str:
    """A bundle's identity: the sha256 of its SHA256SUMS (which lists every file's); a checkpoint's: its own."""
    return sha256_of(path / CHECKSUMS if path.is_dir() else path)
