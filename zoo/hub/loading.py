"""The two ways to load a model, over one path: ``zoo.load_model(path)`` for a checkpoint file or a bundle folder,
``zoo.load_pretrained(spec)`` for a registered name, a URL, a Hugging Face Hub id, or a path as well.

Either way the model comes back in eval mode, fp32, on the CPU, built from the registry's class
(zoo/models/registry.py) and loaded strictly, with nothing unpickled and every bundle file hashed once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L

from zoo.hub.bundles import load_bundle
from zoo.hub.checkpoints import CheckpointError, model_from_checkpoint, read_checkpoint, saved_class_path
from zoo.hub.pretrained import Located, locate
from zoo.models.registry import model_class, public_class_path


def load_model(path: str | Path) -> L.LightningModule:
    """A model from a `zoo fit` checkpoint or a bundle folder; needs no DataModule or config."""
    return _load(Located(Path(path).expanduser()), path)


def load_pretrained(spec: str | Path, known: dict[str, dict] | None = None) -> L.LightningModule:
    """A model from ``spec`` (see zoo.hub.pretrained.locate); ``known`` replaces the packaged registry."""
    return _load(locate(spec, known), spec)


def _load(found: Located, spec: str | Path) -> L.LightningModule:
    try:
        if found.path.is_dir():
            model = load_bundle(found.path, found.listing_sha256)
        else:
            checkpoint = read_checkpoint(found.path)
            cls = model_class(saved_class_path(checkpoint), found.path)
            model = model_from_checkpoint(checkpoint, found.path, cls).eval()
    except CheckpointError:
        if found.discard_if_damaged:
            shutil.rmtree(found.path, ignore_errors=True)  # our download: the next call fetches it again
        raise
    actual = public_class_path(type(model))
    if found.class_path and actual.rpartition(".")[2] != found.class_path.rpartition(".")[2]:
        raise CheckpointError(
            f"{found.path} should hold a {found.class_path} (its registry says) but holds a {actual}."
        )
    # Where it came from, for a model fine-tuned from it (zoo.tasks.fine_tuning.lineage).
    model.loaded_from = {"name": str(spec), "path": str(found.path), "sha256": found.listing_sha256}
    return model
