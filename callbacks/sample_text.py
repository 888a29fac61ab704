"""SampleTextCallback: after each validation, generate text from fixed prompts and log it as a table."""

from __future__ import annotations

import warnings

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from datamodules.checks import require_in, require_positive


class SampleTextCallback(Callback):
    """Logs ``samples``: one row per prompt and validation (epoch, step, prompt, text), so the
    W&B table shows how the samples improve. Needs a module with ``generate_text``.

    A logging callback must never end a run, so the prompts and the length are fitted to the model before
    they are used, with a warning: a prompt with characters outside the model's vocabulary (a config's
    "ROMEO:" on a corpus without those letters) becomes the first line of the training text (at setup), and a
    sample longer than the model's context (``context_size``) is shortened to fit (when validation starts).
    """

    def __init__(self, prompts: tuple[str, ...] = ("\n",), length: int = 200, temperature: float = 0.8, seed: int = 0):
        require_positive(length=length)
        require_in("(0, inf)", temperature=temperature)
        if not prompts or not all(isinstance(p, str) and p for p in prompts):
            raise ValueError(f"prompts must be non-empty strings, got {prompts!r}. Fix: e.g. prompts: ['\\n'].")
        self.prompts, self.length, self.temperature, self.seed = tuple(prompts), length, temperature, seed
        self.rows: list[list] = []

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not hasattr(pl_module, "generate_text"):
            raise ValueError(
                f"SampleTextCallback samples text, but {type(pl_module).__name__} has no generate_text. Fix: remove "
                f"it from trainer.callbacks (translation models: callbacks.TranslationSamplesCallback)."
            )
        vocab = getattr(pl_module, "vocab", None)
        if vocab is not None:
            self.prompts = tuple(self._known_prompt(prompt, vocab, trainer.datamodule) for prompt in self.prompts)

    def on_validation_start(self, trainer, pl_module) -> None:
        """(Here, not in setup: a TransformerLM learns its window, and so loses its context limit, in its own setup.)"""
        context = getattr(pl_module, "context_size", None)
        longest = max(len(p) for p in self.prompts)
        if context is not None and longest + self.length > context:
            if context < 2:
                raise ValueError(f"SampleTextCallback needs a context of 2 or more positions; the model has {context}")
            self.prompts = tuple(p[-(context // 2) :] for p in self.prompts)
            length = context - max(len(p) for p in self.prompts)
            warnings.warn(
                f"SampleTextCallback: a {longest}-character prompt and {self.length} new characters do not fit the "
                f"model's context of {context}; sampling {length} characters (after at most {context // 2} of the "
                f"prompt) instead. Set its length to {length} or less to silence this."
            )
            self.length = length

    @staticmethod
    def _known_prompt(prompt: str, vocab, datamodule) -> str:
        unknown = vocab.unknown_chars(prompt)
        if not unknown:
            return prompt
        tokens = getattr(datamodule, "train_tokens", None)
        start = vocab.decode(tokens[:200]) if tokens is not None and len(tokens) else vocab.chars
        replacement = start.split("\n", 1)[0][:40] or start[:1]
        warnings.warn(
            f"SampleTextCallback: the prompt {prompt!r} holds characters this corpus lacks ({unknown!r}); "
            f"sampling after {replacement!r}, the start of the training text, instead. Set prompts to text of "
            f"this corpus to silence this."
        )
        return replacement

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
