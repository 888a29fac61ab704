"""What character language models (CharRNN, TransformerLM) share: the training and validation steps, the
loss they log, and generation from string prompts. A model provides ``language_model_logits(inputs)``."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from zoo.tasks.checked_checkpoints import CheckedCheckpoints
from zoo.tasks.flops import FORWARD, TRAINING, dense_parameters
from zoo.tasks.freezable_parts import FreezableParts


class LanguageModelTask(CheckedCheckpoints, FreezableParts, ABC):
    """A model implements ``language_model_logits`` (a class without it cannot be instantiated), sets
    ``self.vocab`` (a datamodules.CharVocab or None) and has ``generate`` (zoo.generation.decoding.DecodingMixin).
    Batches are ``(inputs, targets)``, both (B, T). Losses are in nats per token, logged as ``<stage>/loss``
    and, in bits, ``<stage>/bpc``."""

    flops_per_batch: int | None = None  # of the latest batch, for Lightning's ThroughputMonitor (zoo.tasks.flops)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Weighted by tokens in torchmetrics, so that under DDP the validation loss is that of all ranks'
        # windows together, whatever the number each rank holds.
        self.val_nll = MeanMetric()

    @abstractmethod
    def language_model_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) -> next-token logits (B, T, V)."""

    def _loss(self, batch) -> tuple[torch.Tensor, int]:
        inputs, targets = batch
        per_token = TRAINING if self.training else FORWARD
        self.flops_per_batch = per_token * dense_parameters(self, self.output) * targets.numel()
        logits = self.language_model_logits(inputs)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten()), targets.numel()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, tokens = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=tokens)
        self.log("train/bpc", loss / math.log(2), on_step=True, on_epoch=True, batch_size=tokens)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, tokens = self._loss(batch)
        self.val_nll.update(loss, weight=tokens)

    def on_validation_epoch_end(self) -> None:
        loss = self.val_nll.compute()
        self.log("val/loss", loss, prog_bar=True)
        self.log("val/bpc", loss / math.log(2))
        self.val_nll.reset()

    def generate_texts(self, prompt: str, length: int, **options) -> list[tuple[str, float]]:
        """Continuations of ``prompt``, ``length`` characters each, best first, with their scores.

        Runs at batch size 1, whatever the training batch size. ``options`` are those of
        ``zoo.generation.options.DecodingOptions`` (strategy, beam_size, n_best, temperature, top_k, ...).
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
