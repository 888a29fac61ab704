"""Seq2Seq: an RNN encoder-decoder with Bahdanau or Luong attention, for translation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from datamodules.checks import require_in, require_positive
from zoo.generation.decoding import DecodingMixin
from zoo.generation.nested import Static
from zoo.modules.attention import Attention, AttentionKind
from zoo.modules.recurrent import run_rnn
from zoo.modules.rnn_state import RNNState
from zoo.tasks.translation import TranslationTask


@dataclass
class EncoderMemory:
    """What the decoder attends to, computed once per source."""

    values: torch.Tensor  # encoder outputs (B, S, H)
    keys: torch.Tensor  # the values projected for the attention's scores (B, S, A), once rather than every step
    pad_mask: torch.Tensor  # (B, S)


@dataclass
class Seq2SeqState:
    rnn: RNNState  # the decoder's recurrent state
    feed: torch.Tensor  # (B, F) the last step's output features (fed to the next step under input feeding)
    memory: Static[EncoderMemory]  # identical across the beams of a source: expanded once, never reordered


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
        require_positive(
            src_vocab_size=src_vocab_size,
            tgt_vocab_size=tgt_vocab_size,
            embedding_dim=embedding_dim,
            hidden_size=hidden_size,
            encoder_layers=encoder_layers,
            decoder_layers=decoder_layers,
            max_source_len=max_source_len,
            test_beam_size=test_beam_size,
        )
        require_in("[0, 1)", dropout=dropout)
        require_in("(0, inf)", learning_rate=learning_rate)
        require_in("[0, inf)", max_len_a=max_len_a)
        require_in("[0, 1]", teacher_forcing=teacher_forcing)
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        if bidirectional and hidden_size % 2:
            raise ValueError(
                f"a bidirectional encoder splits hidden_size across directions: use an even size, got {hidden_size}"
            )
        if tie_embeddings and adaptive_softmax_cutoffs:
            raise ValueError("tie_embeddings and adaptive_softmax_cutoffs exclude each other: choose one")
        self.save_hyperparameters(logger=False)
        self.max_source_tokens = max_source_len  # zoo.tasks.translation
        self.luong = attention != "bahdanau"
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        directions = 2 if bidirectional else 1
        H, E = hidden_size, embedding_dim
        features_dim = E if tie_embeddings else H  # output features: what the vocabulary projection reads

        self.src_embedding = nn.Embedding(src_vocab_size, E, padding_idx=self.special_ids.pad)
        self.encoder = rnn(
            E,
            H // directions,
            encoder_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if encoder_layers > 1 else 0.0,
        )
        self.bridge = nn.ModuleList(nn.Linear(H, decoder_layers * H) for _ in range(2 if cell == "lstm" else 1))
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, E, padding_idx=self.special_ids.pad)
        self.attention = Attention(attention, query_dim=H, key_dim=H, attention_dim=H)
        fed = features_dim if input_feeding else 0  # Luong feeds the last output features; Bahdanau, its context
        self.decoder = rnn(
            E + (fed if self.luong else H),
            H,
            decoder_layers,
            batch_first=True,
            dropout=dropout if decoder_layers > 1 else 0.0,
        )
        self.combine = nn.Linear(2 * H, features_dim)  # [context; h] -> the features the output layer reads
        self.dropout = nn.Dropout(dropout)
        if adaptive_softmax_cutoffs:
            self.output = nn.AdaptiveLogSoftmaxWithLoss(features_dim, tgt_vocab_size, adaptive_softmax_cutoffs)
        else:
            self.output = nn.Linear(features_dim, tgt_vocab_size)
            if tie_embeddings:
                self.output.weight = self.tgt_embedding.weight

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
        memory = EncoderMemory(outputs, self.attention.project_keys(outputs), src_pad_mask)
        return Seq2SeqState(RNNState(*starts), outputs.new_zeros(batch_size, self.combine.out_features), Static(memory))

    # --- decoder ---------------------------------------------------------------------------

    def decoder_step(
        self, tokens: torch.Tensor, state: Seq2SeqState
    ) -> tuple[torch.Tensor, Seq2SeqState, torch.Tensor]:
        """tokens (B,) -> output features (B, F), the next state, and the attention weights (B, S) used."""
        memory = state.memory.value
        embedded = self.dropout(self.tgt_embedding(tokens))  # (B, E)
        if self.luong:
            rnn_input = torch.cat([embedded, state.feed], -1) if self.hparams.input_feeding else embedded
            out, final = run_rnn(self.decoder, rnn_input[:, None], state.rnn.to_torch())
            context, weights = self.attention(out[:, 0], memory.keys, memory.values, memory.pad_mask)  # current state
        else:
            query = state.rnn.h[:, -1]  # the previous state, top layer
            context, weights = self.attention(query, memory.keys, memory.values, memory.pad_mask)
            out, final = run_rnn(self.decoder, torch.cat([embedded, context], -1)[:, None], state.rnn.to_torch())
        features = torch.tanh(self.combine(torch.cat([context, out[:, 0]], -1)))  # (B, F)
        return features, Seq2SeqState(RNNState.from_torch(final), features, state.memory), weights

    def log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """features (N, F) -> log-probabilities (N, V)."""
        if isinstance(self.output, nn.AdaptiveLogSoftmaxWithLoss):
            return self.output.log_prob(features)
        return self.output(self.dropout(features)).log_softmax(-1)

    def step_with_attention(self, tokens: torch.Tensor, state: Seq2SeqState):
        features, state, weights = self.decoder_step(tokens, state)
        return self.log_probs(features), state, weights

    def step(self, tokens: torch.Tensor, state: Seq2SeqState) -> tuple[torch.Tensor, Seq2SeqState]:
        log_probs, state, _ = self.step_with_attention(tokens, state)
        return log_probs, state

    # --- training --------------------------------------------------------------------------

    def sequence_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing (with probability ``teacher_forcing`` per step, else the model's own guess)."""
        state = self.init_state(
            self.encode(batch["src"], batch["src_pad_mask"]), batch["src_pad_mask"], len(batch["src"])
        )
        if self.training and self.hparams.teacher_forcing < 1:
            features = self._features_with_own_guesses(batch["tgt_in"], state)
        else:
            features = self._teacher_forced_features(batch["tgt_in"], state)  # (B, T, F)
        real = ~batch["tgt_pad_mask"]
        targets = batch["tgt_out"][real]
        if isinstance(self.output, nn.AdaptiveLogSoftmaxWithLoss):
            nll = -self.output(features[real], targets).output.sum()
        else:
            nll = F.cross_entropy(self.output(self.dropout(features[real])), targets, reduction="sum")
        return nll, real.sum()

    def _teacher_forced_features(self, tgt_in: torch.Tensor, state: Seq2SeqState) -> torch.Tensor:
        """The output features (B, T, F) of every target position, fed the reference tokens: what ``decoder_step``
        computes step by step, with the work that does not depend on the previous step done once for all steps."""
        memory = state.memory.value
        embedded = self.dropout(self.tgt_embedding(tgt_in))  # (B, T, E)
        hidden = state.rnn.to_torch()  # (layers, B, H), torch's layout for the whole loop
        if self.luong and not self.hparams.input_feeding:  # no step depends on the last one's attention
            out, _ = run_rnn(self.decoder, embedded, hidden)  # (B, T, H): the whole target in one call
            context, _ = self.attention(out, memory.keys, memory.values, memory.pad_mask)  # (B, T, H)
            return torch.tanh(self.combine(torch.cat([context, out], -1)))
        if not self.luong:  # Bahdanau: the previous state's top layer queries; no step reads the last one's features
            contexts, outs = [], []
            for t in range(tgt_in.shape[1]):
                query = (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]  # (B, H)
                context, _ = self.attention(query, memory.keys, memory.values, memory.pad_mask)
                out, hidden = run_rnn(self.decoder, torch.cat([embedded[:, t], context], -1)[:, None], hidden)
                contexts.append(context)
                outs.append(out[:, 0])
            # The features of all steps in one product, after the loop.
            return torch.tanh(self.combine(torch.cat([torch.stack(contexts, 1), torch.stack(outs, 1)], -1)))
        features, feed = [], state.feed
        for t in range(tgt_in.shape[1]):  # Luong with input feeding: the last step's features join this step's input
            out, hidden = run_rnn(self.decoder, torch.cat([embedded[:, t], feed], -1)[:, None], hidden)
            context, _ = self.attention(out[:, 0], memory.keys, memory.values, memory.pad_mask)
            feed = torch.tanh(self.combine(torch.cat([context, out[:, 0]], -1)))  # (B, F)
            features.append(feed)
        return torch.stack(features, 1)

    def _features_with_own_guesses(self, tgt_in: torch.Tensor, state: Seq2SeqState) -> torch.Tensor:
        """Step by step, each next input the reference with probability ``teacher_forcing``, else the guess."""
        tokens, features = tgt_in[:, 0], []
        for t in range(tgt_in.shape[1]):
            step_features, state, _ = self.decoder_step(tokens, state)
            features.append(step_features)
            if t + 1 < tgt_in.shape[1]:
                teacher = torch.rand((), device="cpu") < self.hparams.teacher_forcing  # a host-side coin
                tokens = tgt_in[:, t + 1] if teacher else self.log_probs(step_features).argmax(-1)
        return torch.stack(features, 1)  # (B, T, F)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
