"""Transformer: the encoder-decoder of Vaswani et al. for translation, decoding with a key/value cache."""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.checks import require_in, require_positive
from zoo.generation.decoding import DecodingMixin
from zoo.generation.nested import Static
from zoo.models.registry import register_model
from zoo.modules.kv_cache import KVCache
from zoo.modules.positional_encoding import PositionalEncoding, PositionalKind
from zoo.modules.renamed_weights import accept_old_names
from zoo.modules.schedules import warmup_inverse_sqrt
from zoo.modules.transformer_layers import CrossMemory, TransformerDecoder, TransformerEncoder, old_layer_names
from zoo.tasks.translation import TranslationTask


@dataclass
class TransformerState:
    caches: list[KVCache]  # per decoder layer: the target positions decoded so far
    source: Static[list[CrossMemory]]  # per decoder layer; identical across a source's beams: expanded once


# Before the blocks had named norms and the stacks their own modules (zoo/modules/transformer_layers.py).
OLD_NAMES = old_layer_names("encoder", "encoder_norm", "encoder", cross=False) + old_layer_names(
    "decoder", "decoder_norm", "decoder", cross=True
)


@register_model
class Transformer(TranslationTask, DecodingMixin, L.LightningModule):
    """Encoder-decoder Transformer.

    Each decoding step runs one position through every layer, reusing the cached keys and
    values of earlier positions; cross-attention keys and values are computed once per
    source. With a joint vocabulary (``src_tokenizer == tgt_tokenizer``) and
    ``tie_embeddings``, source, target and output embeddings are one matrix.

    Args:
        src_vocab_size, tgt_vocab_size, src_tokenizer, tgt_tokenizer: linked from the data (special ids are
            read from the tokenizers).
        d_model, heads, encoder_layers, decoder_layers, ffn_dim: sizes.
        dropout: on embeddings and sub-layer outputs (see transformer_layers).
        norm_first: pre-norm (stabler, the default) or the original post-norm.
        positional: ``sinusoidal``, ``learned`` or ``sin_only`` (only to show aliasing).
        max_positions: the longest sequence (source or target) the model handles.
        tie_embeddings: share embeddings (see above).
        label_smoothing: in the training loss only (validation reports the true NLL).
        learning_rate, warmup_steps: AdamW with linear warm-up then inverse-square-root decay.
        max_len_a, max_len_b, test_beam_size: decoding limits and the beam for ``zoo test``.
    """

    PARTS = {
        "embeddings": r"(src|tgt)_embedding\.",
        "encoder": r"encoder\.",
        "decoder": r"decoder\.",
        "output": r"output\.",
    }  # what callbacks.FreezeParts can freeze

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        src_tokenizer: str | None = None,
        tgt_tokenizer: str | None = None,
        d_model: int = 256,
        heads: int = 4,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        norm_first: bool = True,
        positional: PositionalKind = "sinusoidal",
        max_positions: int = 256,
        tie_embeddings: bool = True,
        label_smoothing: float = 0.1,
        learning_rate: float = 7e-4,
        warmup_steps: int = 4000,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        test_beam_size: int = 5,
    ):
        super().__init__()
        require_positive(
            src_vocab_size=src_vocab_size,
            tgt_vocab_size=tgt_vocab_size,
            d_model=d_model,
            heads=heads,
            encoder_layers=encoder_layers,
            decoder_layers=decoder_layers,
            ffn_dim=ffn_dim,
            max_positions=max_positions,
            test_beam_size=test_beam_size,
        )
        require_in("[0, 1)", dropout=dropout)
        require_in("(0, inf)", learning_rate=learning_rate)
        require_in("[0, inf)", max_len_a=max_len_a)
        require_in("[0, 1)", label_smoothing=label_smoothing)
        self.save_hyperparameters(logger=False)
        self.context_size = max_positions  # target positions for decoding (zoo.generation.decoding)
        self.max_source_tokens = max_positions  # source positions (zoo.tasks.translation)
        joint = src_vocab_size == tgt_vocab_size and src_tokenizer == tgt_tokenizer
        self.tgt_embedding = self._embedding(tgt_vocab_size)
        self.src_embedding = self.tgt_embedding if tie_embeddings and joint else self._embedding(src_vocab_size)
        self.positions = PositionalEncoding(positional, d_model, max_positions)
        self.dropout = nn.Dropout(dropout)
        self.encoder = TransformerEncoder(encoder_layers, d_model, heads, ffn_dim, dropout, norm_first)
        self.decoder = TransformerDecoder(decoder_layers, d_model, heads, ffn_dim, dropout, norm_first, cross=True)
        self.output = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if tie_embeddings:
            self.output.weight = self.tgt_embedding.weight
        accept_old_names(self, OLD_NAMES)

    def _embedding(self, vocab_size: int) -> nn.Embedding:
        """std d^-1/2, so that embeddings scaled by sqrt(d) enter at unit scale (and tied logits stay moderate)."""
        pad = self.special_ids.pad
        embedding = nn.Embedding(vocab_size, self.hparams.d_model, padding_idx=pad)
        nn.init.normal_(embedding.weight, std=self.hparams.d_model**-0.5)
        nn.init.zeros_(embedding.weight[pad])
        return embedding

    def embed(self, tokens: torch.Tensor, embedding: nn.Embedding, offset: int | torch.Tensor = 0) -> torch.Tensor:
        return self.dropout(self.positions(embedding(tokens) * math.sqrt(self.hparams.d_model), offset))

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor) -> torch.Tensor:
        """src (B, S) -> memory (B, S, D)."""
        if bool(src_pad_mask.all(1).any()):
            raise ValueError("an empty source sentence cannot be translated")
        return self.encoder(self.embed(src, self.src_embedding), src_pad_mask)  # (B, S, D)

    def init_state(self, memory: torch.Tensor, src_pad_mask: torch.Tensor, batch_size: int) -> TransformerState:
        caches = self.decoder.empty_caches(batch_size, like=memory)
        return TransformerState(caches, Static(self.decoder.cross_memory(memory, src_pad_mask)))

    def decode_hidden(
        self, tokens: torch.Tensor, state: TransformerState, cross_weights: bool = False
    ) -> tuple[torch.Tensor, TransformerState, torch.Tensor | None]:
        """The next T target tokens (B, T) -> the final hidden states (B, T, D), the state with their keys and
        values cached and, with ``cross_weights``, the last layer's cross-attention of these positions (B, T, S)."""
        x = self.embed(tokens, self.tgt_embedding, offset=state.caches[0].positions())
        hidden, caches, weights = self.decoder(x, state.caches, state.source.value, cross_weights)
        return hidden, TransformerState(caches, state.source), weights

    def decode(self, tokens: torch.Tensor, state: TransformerState, attention: bool = False):
        hidden, state, weights = self.decode_hidden(tokens, state, cross_weights=attention)
        # In fp32 whatever the weights' type: beam scores add these up.
        return self.output(hidden).float().log_softmax(-1), state, weights

    def sequence_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.encode(batch["src"], batch["src_pad_mask"])
        state = self.init_state(memory, batch["src_pad_mask"], len(batch["src"]))
        hidden, _, _ = self.decode_hidden(batch["tgt_in"], state)  # causal: position t sees tokens <= t
        real = ~batch["tgt_pad_mask"]
        logits = self.output(hidden[real])  # the vocabulary projection only where there are targets
        smoothing = self.hparams.label_smoothing if self.training else 0.0
        loss = F.cross_entropy(logits, batch["tgt_out"][real], label_smoothing=smoothing, reduction="sum")
        return loss, real.sum()

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, betas=(0.9, 0.98), weight_decay=0.0
        )
        return {"optimizer": optimizer, "lr_scheduler": warmup_inverse_sqrt(optimizer, self.hparams.warmup_steps)}
