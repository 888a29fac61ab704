"""Seq2Seq: an RNN encoder-decoder with Bahdanau or Luong attention, for translation."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from datamodules.checks import require_in, require_positive
from zoo.generation.decoding import DecodingMixin
from zoo.generation.nested import Static
from zoo.models.registry import register_model
from zoo.modules.attention import AttentionKind
from zoo.modules.attention_decoder import AttentionDecoder, EncoderMemory, Seq2SeqState
from zoo.modules.recurrent import run_rnn
from zoo.modules.renamed_weights import accept_old_names
from zoo.modules.rnn_state import RNNState
from zoo.tasks.translation import TranslationTask

__all__ = ["EncoderMemory", "Seq2Seq", "Seq2SeqState"]

# Before the decoder became one module (zoo/modules/attention_decoder.py), its layers sat on the model.
OLD_NAMES = [
    (r"^decoder\.((weight|bias)_)", r"decoder.rnn.\1"),
    (r"^(attention|combine)\.", r"decoder.\1."),
]


@register_model
class Seq2Seq(TranslationTask, DecodingMixin, L.LightningModule):
    """RNN encoder-decoder with attention.

    The encoder (optionally bidirectional; hidden_size split across directions) runs on
    packed sequences, so padding never changes a state; a bridge maps its final state to
    the decoder's initial state. Bahdanau: the decoder's previous state queries the
    encoder outputs and the context joins the RNN input. Luong (dot, general, concat):
    the current state queries, and the attentional state tanh(W[c; h]) feeds the output
    layer and, with input feeding, the next step's input.

    Args:
        src_vocab_size, tgt_vocab_size, src_tokenizer, tgt_tokenizer:
            linked from the TranslationDataModule by the CLI; the tokenizers (JSON) travel in checkpoints,
            and the special token ids are read from them (zoo.tasks.translation).
        cell: ``gru`` or ``lstm``.
        embedding_dim, hidden_size: sizes of embeddings and recurrent states.
        encoder_layers, decoder_layers, bidirectional: the RNN stacks.
        attention: ``bahdanau``, or Luong's ``dot``, ``general`` or ``concat``.
        input_feeding: Luong only: feed the attentional state into the next step.
        dropout: on embeddings, between layers and before the output layer.
        teacher_forcing: probability, per training step, of feeding the reference token
            rather than the model's own previous prediction.
        tie_embeddings: share the target embedding with the output layer; the output features then have
            embedding_dim units (a bottleneck when embedding_dim < hidden_size, as fairseq's out_embed_dim:
            the vocabulary projection, the costliest layer, shrinks with it).
        adaptive_softmax_cutoffs: use an adaptive softmax with these cutoffs (word-level vocabularies).
        learning_rate: Adam's.
        max_source_len: longer sources are refused at translation time.
        max_len_a, max_len_b: decoding stops after a * source length + b tokens.
        test_beam_size: beam size for ``zoo test``.
    """

    PARTS = {
        "embeddings": r"(src|tgt)_embedding\.",
        "encoder": r"(encoder|bridge)\.",
        "decoder": r"decoder\.",
        "output": r"output\.",
    }  # what callbacks.FreezeParts can freeze

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        src_tokenizer: str | None = None,
        tgt_tokenizer: str | None = None,
        cell: Literal["gru", "lstm"] = "gru",
        embedding_dim: int = 256,
        hidden_size: int = 512,
        encoder_layers: int = 1,
        decoder_layers: int = 1,
        bidirectional: bool = True,
        attention: AttentionKind = "bahdanau",
        input_feeding: bool = True,
        dropout: float = 0.2,
        teacher_forcing: float = 1.0,
        tie_embeddings: bool = False,
        adaptive_softmax_cutoffs: list[int] | None = None,
        learning_rate: float = 1e-3,
        max_source_len: int = 256,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        test_beam_size: int = 5,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        check_hyperparameters(self.hparams)
        self.max_source_tokens = max_source_len  # zoo.tasks.translation
        directions = 2 if bidirectional else 1
        H, E = hidden_size, embedding_dim
        features_dim = E if tie_embeddings else H  # output features: what the vocabulary projection reads
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.src_embedding = nn.Embedding(src_vocab_size, E, padding_idx=self.special_ids.pad)
        between_layers = dropout if encoder_layers > 1 else 0.0  # (torch warns of dropout in a one-layer RNN)
        self.encoder = rnn(
            E, H // directions, encoder_layers, batch_first=True, bidirectional=bidirectional, dropout=between_layers
        )
        self.bridge = nn.ModuleList(nn.Linear(H, decoder_layers * H) for _ in range(2 if cell == "lstm" else 1))
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, E, padding_idx=self.special_ids.pad)
        self.decoder = AttentionDecoder(cell, E, H, decoder_layers, attention, input_feeding, features_dim, dropout)
        self.dropout = nn.Dropout(dropout)
        if adaptive_softmax_cutoffs:
            self.output = nn.AdaptiveLogSoftmaxWithLoss(features_dim, tgt_vocab_size, adaptive_softmax_cutoffs)
        else:
            self.output = nn.Linear(features_dim, tgt_vocab_size)
            if tie_embeddings:
                self.output.weight = self.tgt_embedding.weight
        accept_old_names(self, OLD_NAMES)

    # --- encoder ---------------------------------------------------------------------------

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor):
        """src (B, S) -> (encoder outputs (B, S, H), final states); pads never enter the RNN."""
        lengths = (~src_pad_mask).sum(1)
        if bool((lengths == 0).any()):
            raise ValueError("an empty source sentence cannot be translated")
        if src.shape[1] > self.hparams.max_source_len:
            raise ValueError(
                f"a source of {src.shape[1]} tokens is longer than this model accepts ({self.hparams.max_source_len}). "
                f"Fix: split the sentence, or raise max_source_len."
            )
        x = self.dropout(self.src_embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, final = run_rnn(self.encoder, packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, H)
        return out, final

    def init_state(self, memory, src_pad_mask: torch.Tensor, batch_size: int) -> Seq2SeqState:
        outputs, final = memory
        directions = 2 if self.hparams.bidirectional else 1
        starts = []
        for f, bridge in zip(final if isinstance(final, tuple) else (final,), self.bridge):  # LSTM: h and c
            top = f[-directions:].transpose(0, 1).reshape(batch_size, -1)  # (B, H): last layer, directions joined
            starts.append(torch.tanh(bridge(top)).view(batch_size, self.hparams.decoder_layers, -1))  # (B, layers, H)
        features = outputs.new_zeros(batch_size, self.decoder.combine.out_features)
        return Seq2SeqState(RNNState(*starts), features, Static(self.decoder.memory(outputs, src_pad_mask)))

    # --- decoder ---------------------------------------------------------------------------

    def decode(self, tokens: torch.Tensor, state: Seq2SeqState, attention: bool = False):
        features, state, weights = self.decoder(self.dropout(self.tgt_embedding(tokens)), state)  # (B, T, F)
        return self.log_probs(features), state, weights if attention else None

    def log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., F) -> log-probabilities (..., V)."""
        if isinstance(self.output, nn.AdaptiveLogSoftmaxWithLoss):
            return self.output.log_prob(features.flatten(0, -2)).view(*features.shape[:-1], -1)
        # In fp32 whatever the weights' type: beam scores add these up.
        return self.output(self.dropout(features)).float().log_softmax(-1)

    # --- training --------------------------------------------------------------------------

    def sequence_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing (with probability ``teacher_forcing`` per step, else the model's own guess)."""
        state = self.init_state(
            self.encode(batch["src"], batch["src_pad_mask"]), batch["src_pad_mask"], len(batch["src"])
        )
        if self.training and self.hparams.teacher_forcing < 1:
            features = self._features_with_own_guesses(batch["tgt_in"], state)
        else:
            features, _, _ = self.decoder(self.dropout(self.tgt_embedding(batch["tgt_in"])), state)  # (B, T, F)
        real = ~batch["tgt_pad_mask"]
        targets = batch["tgt_out"][real]
        if isinstance(self.output, nn.AdaptiveLogSoftmaxWithLoss):
            nll = -self.output(features[real], targets).output.sum()
        else:
            nll = F.cross_entropy(self.output(self.dropout(features[real])), targets, reduction="sum")
        return nll, real.sum()

    def _features_with_own_guesses(self, tgt_in: torch.Tensor, state: Seq2SeqState) -> torch.Tensor:
        """Position by position, each next input the reference with probability ``teacher_forcing``, else the
        model's guess."""
        tokens, features = tgt_in[:, :1], []
        for t in range(tgt_in.shape[1]):
            step_features, state, _ = self.decoder(self.dropout(self.tgt_embedding(tokens)), state)  # (B, 1, F)
            features.append(step_features)
            if t + 1 < tgt_in.shape[1]:
                teacher = torch.rand((), device="cpu") < self.hparams.teacher_forcing  # a host-side coin
                tokens = tgt_in[:, t + 1 : t + 2] if teacher else self.log_probs(step_features).argmax(-1)
        return torch.cat(features, 1)  # (B, T, F)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)


def check_hyperparameters(h) -> None:
    """Seq2Seq's arguments, each refused by name when out of range, before any layer is built."""
    require_positive(
        src_vocab_size=h.src_vocab_size,
        tgt_vocab_size=h.tgt_vocab_size,
        embedding_dim=h.embedding_dim,
        hidden_size=h.hidden_size,
        encoder_layers=h.encoder_layers,
        decoder_layers=h.decoder_layers,
        max_source_len=h.max_source_len,
        test_beam_size=h.test_beam_size,
    )
    require_in("[0, 1)", dropout=h.dropout)
    require_in("(0, inf)", learning_rate=h.learning_rate)
    require_in("[0, inf)", max_len_a=h.max_len_a)
    require_in("[0, 1]", teacher_forcing=h.teacher_forcing)
    if h.cell not in ("gru", "lstm"):
        raise ValueError(f"cell must be 'gru' or 'lstm', got {h.cell!r}")
    if h.bidirectional and h.hidden_size % 2:
        raise ValueError(
            f"a bidirectional encoder splits hidden_size across directions: use an even size, got {h.hidden_size}"
        )
    if h.tie_embeddings and h.adaptive_softmax_cutoffs:
        raise ValueError("tie_embeddings and adaptive_softmax_cutoffs exclude each other: choose one")
