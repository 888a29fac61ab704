"""What character language models (CharRNN, TransformerLM) share: the training and validation steps, the
loss they log, and generation from string prompts. A model provides ``language_model_logits(inputs)``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from zoo.checkpoints import ChecksCheckpointClass


def log_language_model_loss(module, logits: torch.Tensor, targets: torch.Tensor, stage: str) -> torch.Tensor:
    """Cross-entropy in nats per token, logged as ``<stage>/loss`` and, in bits, ``<stage>/bpc``."""
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    on_step = stage == "train"
    # Epoch values are averaged over ranks too (sync_dist): every rank's batches hold the same number of tokens.
    for name, value in (("loss", loss), ("bpc", loss / math.log(2))):
        module.log(f"{stage}/{name}", value, prog_bar=name == "loss", on_step=on_step, on_epoch=True,
                   batch_size=targets.numel(), sync_dist=not on_step)  # fmt: skip
    return loss


class LanguageModelTask(ChecksCheckpointClass):
    """Needs ``language_model_logits``, ``self.vocab`` (a datamodules.CharVocab or None) and ``generate``
    (zoo.decoding.DecodingMixin). Batches are ``(inputs, targets)``, both (B, T)."""

    def _shared_step(self, batch, stage: str) -> torch.Tensor:
        inputs, targets = batch
        return log_language_model_loss(self, self.language_model_logits(inputs), targets, stage)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")

    def generate_texts(self, prompt: str, length: int, **options) -> list[tuple[str, float]]:
        """Continuations of ``prompt``, ``length`` characters each, best first, with their scores.

        Runs at batch size 1, whatever the training batch size. ``options`` are those of
        ``zoo.decoding.DecodingOptions`` (strategy, beam_size, n_best, temperature, top_k, ...).
        """
        if self.vocab is None:
            raise ValueError("this model has no vocabulary (vocab=None): generate token ids with generate()")
        if not prompt:
            raise ValueError("the prompt is empty. Fix: give at least one character, e.g. a newline.")
        ids = self.vocab.encode(prompt)[None].to(self.device)  # (1, P)
        hypotheses = self.generate(prompt=ids, max_len=length, **options)[0]
        return [(self.vocab.decode(h.tokens), h.score) for h in hypotheses]

    def generate_text(self, prompt: str, length: int, **options) -> str:
        """The best continuation of ``prompt`` (see ``generate_texts``)."""
        return self.generate_texts(prompt, length, **options)[0][0]
