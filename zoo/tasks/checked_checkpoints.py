"""What every zoo model does with checkpoints, mixed into the tasks: ``Model.load_from_checkpoint`` (Lightning's
signature) reads the file safely and refuses another model class, and a run resumed with ``--ckpt_path`` refuses a
checkpoint of another model, vocabulary or size before Lightning restores anything."""

from __future__ import annotations

from zoo.hub.checkpoints import CheckpointError, check_class, check_compatible, model_from_checkpoint, read_checkpoint
from zoo.modules.renamed_weights import optimizer_state_in_current_order


class CheckedCheckpoints:
    @classmethod
    def load_from_checkpoint(
        cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, weights_only=None, **kwargs
    ):
        """The model saved at ``checkpoint_path``, which must be a ``cls``; ``kwargs`` replace saved constructor
        arguments and ``map_location`` is the device to put it on (default: the CPU), as in Lightning. A zoo
        checkpoint holds its own hyperparameters and loads strictly, without unpickling: ``hparams_file``,
        ``strict=False`` and ``weights_only=False`` are refused."""
        if hparams_file is not None or strict is False or weights_only is False:
            raise CheckpointError(
                "zoo checkpoints load with their own hyperparameters, strictly and without unpickling objects: "
                "hparams_file, strict=False and weights_only=False are not supported. Fix: leave them out "
                "(pass changed constructor arguments as keyword arguments)."
            )
        checkpoint = read_checkpoint(checkpoint_path)
        fix = "Fix: load it with its own class's load_from_checkpoint, or with zoo.load_model (any zoo model)."
        check_class(checkpoint, cls.__name__, checkpoint_path, fix)
        model = model_from_checkpoint(checkpoint, checkpoint_path, cls, **kwargs)
        return model if map_location is None else model.to(map_location)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Lightning restores weights and optimizers right after this hook (fit, validate, test with ckpt_path):
        refuse a checkpoint of another model, vocabulary or size here, with a message instead of a shape
        traceback, and put an older file's optimizer state in today's parameter order."""
        check_compatible(checkpoint, self, "the checkpoint")
        optimizer_state_in_current_order(checkpoint, self)
        self.parent = checkpoint.get("parent")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """A fine-tuned model's checkpoints name its parent (zoo.tasks.fine_tuning.lineage), and every checkpoint
        the precision it was trained in (bf16-mixed by default where the CPU has native bf16), for the model card."""
        if getattr(self, "parent", None):
            checkpoint["parent"] = self.parent
        if self._trainer is not None:
            checkpoint["precision"] = str(self._trainer.precision)
