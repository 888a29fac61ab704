"""SampleTextCallback: after each validation, generate text from fixed prompts and log it as a table."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger


class SampleTextCallback(Callback):
    """Logs ``samples``: one row per prompt and validation (epoch, step, prompt, text), so the
    W&B table shows how the samples improve. Needs a module with ``generate_text``.
    """

    def __init__(self, prompts: tuple[str, ...] = ("\n",), length: int = 200, temperature: float = 0.8, seed: int = 0):
        self.prompts, self.length, self.temperature, self.seed = prompts, length, temperature, seed
        self.rows: list[list] = []

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        for prompt in self.prompts:
            text = pl_module.generate_text(
                prompt, self.length, strategy="sample", temperature=self.temperature, seed=self.seed
            )
            self.rows.append([trainer.current_epoch, trainer.global_step, prompt, prompt + text])
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_text("samples", columns=["epoch", "step", "prompt", "text"], data=self.rows)
