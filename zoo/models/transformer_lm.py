"""TransformerLM: a decoder-only (GPT-style) language model built from the Transformer's decoder layers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import torch
from lightning_utilities.core.apply_func import apply_to_collection
from torch import nn

from datamodules.char_vocab import CharVocab
from datamodules.checks import require_in, require_positive
from zoo.generation.decoding import DecodingMixin
from zoo.generation.nested import gather_rows, join_rows
from zoo.models.registry import register_model
from zoo.modules.kv_cache import KVCache
from zoo.modules.positional_encoding import PositionalEncoding, PositionalKind
from zoo.modules.renamed_weights import accept_old_names
from zoo.modules.schedules import warmup_inverse_sqrt
from zoo.modules.transformer_layers import TransformerDecoder, old_layer_names
from zoo.tasks.language_model import LanguageModelTask


@dataclass
class State:
    """Decoding state: one KVCache per layer, and the last ``window`` tokens each row has read, right-aligned
    (zeros before its first), to read again when generation slides past the window."""

    caches: list[KVCache]
    recent: torch.Tensor  # (B, window) long; (B, 0) for a model without a window


# Before the blocks had named norms and the stack its own module (zoo/modules/transformer_layers.py).
OLD_NAMES = old_layer_names("blocks", "norm", "decoder", cross=False)


@register_model
class TransformerLM(LanguageModelTask, DecodingMixin, L.LightningModule):
    """Causal Transformer language model; trains on CharDataModule windows (stateless), generates with a KV cache.

    Args:
        vocab_size, vocab: linked from the DataModule (vocab: the characters, id = position).
        d_model, heads, layers, ffn_dim, dropout, norm_first, positional: the stack.
        max_positions: the most positions the model has (without a window: the longest prompt + generated text).
        window: the context it trains on (by default its DataModule's seq_len, see ``setup``). Positions past
            it were never trained, so generation slides: when the context would pass ``window``, the last
            ``window // 2`` tokens are read again from position 0 and decoding goes on from there (None: no
            sliding, for checkpoints from before this argument).
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
        window: int | None = None,
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
        if window is not None and not 2 <= window <= max_positions:
            raise ValueError(f"window must lie in 2..max_positions ({max_positions}), got {window}")
        require_in("(0, inf)", learning_rate=learning_rate)
        self.save_hyperparameters(logger=False)
        self.vocab = CharVocab(vocab) if vocab is not None else None
        self.window = window
        self.context_size = max_positions if window is None else None  # prompt + generated text (a window: any)
        self.embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        self.positions = PositionalEncoding(positional, d_model, max_positions)
        self.dropout = nn.Dropout(dropout)
        self.decoder = TransformerDecoder(layers, d_model, heads, ffn_dim, dropout, norm_first, cross=False)
        self.output = nn.Linear(d_model, vocab_size, bias=False)
        self.output.weight = self.embedding.weight  # tied
        accept_old_names(self, OLD_NAMES)

    def setup(self, stage: str) -> None:
        """Without a window given, a run's window is the length of the windows it trains on (its DataModule's
        ``seq_len``), saved with the other hyperparameters."""
        seq_len = getattr(self.trainer.datamodule, "seq_len", None)
        if stage == "fit" and self.window is None and isinstance(seq_len, int):
            self.window = self.hparams.window = min(seq_len, self.hparams.max_positions)
            self.context_size = None

    def init_state(self, memory, src_pad_mask, batch_size: int) -> State:
        caches = self.decoder.empty_caches(batch_size, like=self.embedding.weight)
        recent = torch.zeros(batch_size, self.window or 0, dtype=torch.long, device=self.embedding.weight.device)
        return State(caches, recent)

    def logits(self, tokens: torch.Tensor, caches: list[KVCache]) -> tuple[torch.Tensor, list[KVCache]]:
        """tokens (B, T) after the cached ones -> logits (B, T, V) and the extended caches."""
        x = self.embedding(tokens) * math.sqrt(self.hparams.d_model)
        x = self.dropout(self.positions(x, offset=caches[0].positions()))
        hidden, caches, _ = self.decoder(x, caches)  # (B, T, D)
        return self.output(hidden), caches

    def decode(self, tokens: torch.Tensor, state: State, attention: bool = False):
        if self.window is None or state.caches[0].length + tokens.shape[1] <= self.window:
            logits, caches = self.logits(tokens, state.caches)
            recent = torch.cat([state.recent, tokens], 1)[:, tokens.shape[1] :]
            # In fp32 whatever the weights' type: beam scores add these up.
            return logits.float().log_softmax(-1), State(caches, recent), None
        outputs = []  # past the window: the tokens that fit, then a slide, and so on (as one at a time would)
        while tokens.shape[1]:
            room = self.window - state.caches[0].length
            if room == 0:
                state = self.slid(state)
                continue
            log_probs, state, _ = self.decode(tokens[:, :room], state)
            outputs.append(log_probs)
            tokens = tokens[:, room:]
        return torch.cat(outputs, 1), state, None

    def slid(self, state: State) -> State:
        """The rows whose context is full read their last ``window // 2`` tokens again from position 0; the others
        (rows that joined a running batch later, zoo/serving) keep their caches and slide when theirs is full."""
        cache, keep = state.caches[0], self.window // 2
        real = torch.full((len(state.recent),), cache.length) if cache.pad is None else (~cache.pad).sum(1).cpu()
        full = real >= self.window
        if not bool(full.any()):  # every row starts with padding: drop those columns
            return apply_to_collection(state, KVCache, KVCache.trimmed)
        sliding = full.nonzero()[:, 0].to(state.recent.device)
        _, slid, _ = self.decode(state.recent[sliding, -keep:], self.init_state(None, None, len(sliding)))
        slid.recent = state.recent[sliding]  # (read again, not read anew)
        if bool(full.all()):
            return slid
        staying = (~full).nonzero()[:, 0].to(state.recent.device)
        rest = apply_to_collection(gather_rows(state, staying), KVCache, KVCache.trimmed)  # (no all-pad columns)
        back = torch.cat([sliding, staying]).argsort()  # the rows in their order again
        return gather_rows(join_rows(slid, rest), back)

    def language_model_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) -> logits (B, T, V), each position seeing itself and the past."""
        return self.logits(inputs, self.init_state(None, None, inputs.shape[0]).caches)[0]

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.learning_rate, betas=(0.9, 0.98))
        return {"optimizer": optimizer, "lr_scheduler": warmup_inverse_sqrt(optimizer, self.hparams.warmup_steps)}
