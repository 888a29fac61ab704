"""The model registry: the classes that checkpoints and bundles may build, each joining with ``@register_model``.

Files name their model class (``zoo.CharRNN``; older ones ``zoo.char_rnn.CharRNN``): loading
looks the name up here, so only these classes are ever built from a file. Importing
``zoo.models`` (which any import of this module does first) defines, and so registers, them all.
"""

from __future__ import annotations

from pathlib import Path

from zoo.hub.checkpoints import CheckpointError

MODEL_CLASSES: dict[str, type] = {}  # class name -> class


def register_model(cls: type) -> type:
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def model_class(class_path: str | None, source: str | Path) -> type:
    """The registered class ``class_path`` (read from the file ``source``) names, by class name, whatever module it
    was written from: files from before zoo/ had subpackages say zoo.char_rnn.CharRNN, newer ones zoo.CharRNN."""
    if not class_path:
        raise CheckpointError(
            f"{source} does not name its model class (it was not written by `zoo fit`). "
            f"Fix: load it with the class itself, e.g. zoo.CharRNN.load_from_checkpoint(path)."
        )
    module_name, _, class_name = class_path.rpartition(".")
    if module_name != "zoo" and not module_name.startswith("zoo."):
        raise CheckpointError(f"{source} names model class {class_path!r}, which is not a zoo model.")
    if class_name not in MODEL_CLASSES:
        raise CheckpointError(f"{source} names model class {class_path!r}, which does not exist in this version.")
    return MODEL_CLASSES[class_name]


def public_class_path(cls: type) -> str:
    """How checkpoints and bundles name a model class: ``zoo.<Name>``, which survives moves inside zoo/."""
    return f"zoo.{cls.__name__}" if MODEL_CLASSES.get(cls.__name__) is cls else f"{cls.__module__}.{cls.__qualname__}"
