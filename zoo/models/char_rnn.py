"""CharRNN: an LSTM/GRU language model over characters (or any token ids)."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
from torch import nn

from datamodules.char_vocab import CharVocab
from datamodules.checks import require_in, require_positive
from zoo.generation.decoding import DecodingMixin
from zoo.generation.nested import tensors_of
from zoo.models.registry import register_model
from zoo.modules.recurrent import run_rnn
from zoo.modules.rnn_state import RNNState
from zoo.tasks.language_model import LanguageModelTask


@register_model
class CharRNN(LanguageModelTask, DecodingMixin, L.LightningModule):
    """A character-level recurrent language model.

    Trains stateless (random windows, zero state each batch) or stateful (contiguous
    streams, state carried across batches): the difference lies in the data and in
    ``callbacks.HiddenStateCallback``, not here. The model reads its starting state from
    ``self.hidden_state`` and stores its final state there; the callback resets or detaches it.

    Args:
        vocab_size: number of token ids (linked from the DataModule by the CLI).
        vocab: the characters, id = position (linked from the DataModule); needed to
            generate text, and saved in every checkpoint.
        cell: ``lstm`` or ``gru``.
        hidden_size: units per recurrent layer.
        num_layers: stacked recurrent layers.
        embedding_dim: input embedding size; None means ``hidden_size``.
        dropout: between recurrent layers and before the output layer.
        tie_embeddings: share the input embedding with the output layer (needs
            ``embedding_dim == hidden_size``).
        learning_rate: Adam's learning rate.
    """

    PARTS = {
        "embeddings": r"embedding\.",
        "layers.{n}": r"rnn\.\w+_l{n}$",
        "output": r"output\.",
    }  # what callbacks.FreezeParts can freeze

    def __init__(
        self,
        vocab_size: int,
        vocab: str | None = None,
        cell: Literal["lstm", "gru"] = "lstm",
        hidden_size: int = 512,
        num_layers: int = 2,
        embedding_dim: int | None = None,
        dropout: float = 0.0,
        tie_embeddings: bool = False,
        learning_rate: float = 2e-3,
    ):
        super().__init__()
        require_positive(
            vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers, embedding_dim=embedding_dim
        )
        require_in("[0, 1)", dropout=dropout)
        require_in("(0, inf)", learning_rate=learning_rate)
        embedding_dim = embedding_dim or hidden_size
        if vocab is not None and len(vocab) != vocab_size:
            raise ValueError(f"vocab has {len(vocab)} characters but vocab_size is {vocab_size}")
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        if tie_embeddings and embedding_dim != hidden_size:
            raise ValueError(
                f"tie_embeddings needs embedding_dim == hidden_size, got {embedding_dim} and {hidden_size}. "
                f"Fix: set embedding_dim to {hidden_size} (or leave it unset), or tie_embeddings: false."
            )
        # logger=False: the CLI sends the full nested config to the logger once.
        self.save_hyperparameters(logger=False)
        self.vocab = CharVocab(vocab) if vocab is not None else None
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_class(embedding_dim, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.weight
        self.hidden_state: RNNState | None = None  # carried between batches; see HiddenStateCallback

    def forward(self, tokens: torch.Tensor, state: RNNState | None = None) -> tuple[torch.Tensor, RNNState]:
        """tokens (B, T) -> logits (B, T, V) and the state after the last token."""
        x = self.embedding(tokens)  # (B, T, E)
        out, final = run_rnn(self.rnn, x, None if state is None else state.to_torch())  # (B, T, H)
        return self.output(self.dropout(out)), RNNState.from_torch(final)

    # --- training -------------------------------------------------------------------------

    def _carried_state(self, batch_size: int) -> RNNState | None:
        state = self.hidden_state
        if state is None:
            return None
        if isinstance(state, dict):  # restored from a checkpoint written before RNNState: {"h": ..., "c": ...}
            state = RNNState(**state)
        if any(t.grad_fn is not None for t in tensors_of(state)):
            raise RuntimeError(
                "the hidden state carried from the previous batch still holds its graph. "
                "Fix: add callbacks.HiddenStateCallback to trainer.callbacks (mode 'preserve' for "
                "data.mode stateful, 'reset' for stateless)."
            )
        if state.batch_size != batch_size:
            raise RuntimeError(
                f"the carried hidden state has batch size {state.batch_size} but this batch has {batch_size}: "
                f"state can only be carried over stateful data. Fix: data.mode stateful, or "
                f"HiddenStateCallback(mode='reset')."
            )
        return state

    def language_model_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) -> logits (B, T, V), starting from the carried state and carrying the final one."""
        logits, self.hidden_state = self(inputs, self._carried_state(inputs.shape[0]))
        return logits

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)

    # --- decoding protocol -----------------------------------------------------------------

    def init_state(self, memory, src_pad_mask, batch_size: int) -> RNNState:
        lstm = self.hparams.cell == "lstm"
        return RNNState.zeros(batch_size, self.hparams.num_layers, self.hparams.hidden_size, lstm, self.output.weight)

    def decode(self, tokens: torch.Tensor, state: RNNState, attention: bool = False):
        logits, state = self(tokens, state)  # (B, T, V): all T tokens in one RNN call
        # In fp32 whatever the weights' type: beam scores add these up.
        return logits.float().log_softmax(-1), state, None
