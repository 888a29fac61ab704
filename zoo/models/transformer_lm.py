"""TransformerLM: a decoder-only (GPT-style) language model built from the Transformer's decoder layers."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn

from datamodules.char_vocab import CharVocab
from datamodules.checks import require_in, require_positive
from zoo.generation.decoding import DecodingMixin
from zoo.models.registry import register_model
from zoo.modules.kv_cache import KVCache
from zoo.modules.positional_encoding import PositionalEncoding, PositionalKind
from zoo.modules.renamed_weights import accept_old_names
from zoo.modules.schedules import warmup_inverse_sqrt
from zoo.modules.transformer_layers import TransformerDecoder, old_layer_names
from zoo.tasks.language_model import LanguageModelTask

# Decoding state: one KVCache per layer.
State = list[KVCache]

# Before the blocks had named norms and the stack its own module (zoo/modules/transformer_layers.py).
OLD_NAMES = old_layer_names("blocks", "norm", "decoder", cross=False)


@register_model
class TransformerLM(LanguageModelTask, DecodingMixin, L.LightningModule):
    """Causal Transformer language model; trains on CharDataModule windows (stateless), generates with a KV cache.

    Args:
        vocab_size, vocab: linked from the DataModule (vocab: the characters, id = position).
        d_model, heads, layers, ffn_dim, dropout, norm_first, positional: the stack.
        max_positions: the longest context (prompt + generated text) the model handles.
        learning_rate, warmup_steps: AdamW with linear warm-up, then inverse-square-root decay.
    """

    PARTS = {
        "embeddings": r"embedding\.",
        "layers.{n}": r"decoder\.layers\.{n}\.",
        "output": r"(output|decoder\.norm)\.",
    }  # what callbacks.FreezeParts can freeze

    def __init__(
        self,
        vocab_size: int,
        vocab: str | None = None,
        d_model: int = 192,
        heads: int = 6,
        layers: int = 4,
        ffn_dim: int = 768,
        dropout: float = 0.1,
        norm_first: bool = True,
        positional: PositionalKind = "sinusoidal",
        max_positions: int = 1024,
        learning_rate: float = 1e-3,
        warmup_steps: int = 200,
    ):
        super().__init__()
        require_positive(
            vocab_size=vocab_size,
            d_model=d_model,
            heads=heads,
            layers=layers,
            ffn_dim=ffn_dim,
            max_positions=max_positions,
        )
        require_in("[0, 1)", dropout=dropout)
        require_in("(0, inf)", learning_rate=learning_rate)
        self.save_hyperparameters(logger=False)
        self.vocab = CharVocab(vocab) if vocab is not None else None
        self.context_size = max_positions  # prompt + generated text (zoo.generation.decoding); no sliding window
        self.embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        self.positions = PositionalEncoding(positional, d_model, max_positions)
        self.dropout = nn.Dropout(dropout)
        self.decoder = TransformerDecoder(layers, d_model, heads, ffn_dim, dropout, norm_first, cross=False)
        self.output = nn.Linear(d_model, vocab_size, bias=False)
        self.output.weight = self.embedding.weight  # tied
        accept_old_names(self, OLD_NAMES)

    def init_state(self, memory, src_pad_mask, batch_size: int) -> State:
        return self.decoder.empty_caches(batch_size, like=self.embedding.weight)

    def logits(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens (B, T) after the cached ones -> logits (B, T, V) and the extended caches."""
        x = self.embedding(tokens) * math.sqrt(self.hparams.d_model)
        x = self.dropout(self.positions(x, offset=state[0].positions()))
        hidden, caches, _ = self.decoder(x, state)  # (B, T, D)
        return self.output(hidden), caches

    def decode(self, tokens: torch.Tensor, state: State, attention: bool = False):
        logits, state = self.logits(tokens, state)
        # In fp32 whatever the weights' type: beam scores add these up.
        return logits.float().log_softmax(-1), state, None

    def language_model_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) -> logits (B, T, V), each position seeing itself and the past."""
        return self.logits(inputs, self.init_state(None, None, inputs.shape[0]))[0]

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.learning_rate, betas=(0.9, 0.98))
        return {"optimizer": optimizer, "lr_scheduler": warmup_inverse_sqrt(optimizer, self.hparams.warmup_steps)}
