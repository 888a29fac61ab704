"""AttentionDecoder: the recurrence of an RNN seq2seq decoder, written once for training and for decoding.

One position t, with y_t the target embedding fed in, h the RNN state (top layer queries), c the
context from attention over the encoder outputs, f the output features and W ``combine``:

    Bahdanau:  c_t = attend(h_{t-1});  h_t = RNN([y_t; c_t], h_{t-1})
    Luong:     h_t = RNN([y_t; f_{t-1}], h_{t-1}) with input feeding, else RNN(y_t, h_{t-1});  c_t = attend(h_t)
    both:      f_t = tanh(W [c_t; h_t])    the features the output layer reads

``forward`` runs T positions; a decoding step is T = 1, training's teacher forcing T = the target.
Luong without input feeding has no position that waits on the previous one's attention, so it
runs as a different algorithm built from the same layers: one RNN call over all T, then
attention and features for all T at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from zoo.generation.nested import Static, pad_positions
from zoo.modules.attention import Attention, AttentionKind
from zoo.modules.recurrent import run_rnn
from zoo.modules.rnn_state import RNNState


@dataclass
class EncoderMemory:
    """What the decoder attends to, computed once per source."""

    values: torch.Tensor  # encoder outputs (B, S, H)
    keys: torch.Tensor  # the values projected for the attention's scores (B, S, A), once rather than every step
    pad_mask: torch.Tensor  # (B, S)

    def join_rows(self, other: EncoderMemory) -> EncoderMemory:
        """The rows of both, the shorter sources padded (masked) to the longer ones' length."""
        S = max(self.pad_mask.shape[1], other.pad_mask.shape[1])
        joined = lambda name, value=0: torch.cat(  # noqa: E731
            [pad_positions(getattr(m, name), S, 1, value) for m in (self, other)]
        )
        return EncoderMemory(joined("values"), joined("keys"), joined("pad_mask", True))


@dataclass
class Seq2SeqState:
    rnn: RNNState  # the decoder's recurrent state
    feed: torch.Tensor  # (B, F) the last position's output features (the next input, under input feeding)
    memory: Static[EncoderMemory]  # identical across the beams of a source: expanded once, never reordered


class AttentionDecoder(nn.Module):
    """Args: cell, the RNN (``gru`` or ``lstm``); input_dim, the embeddings' size; hidden_size and layers, the
    RNN's (the encoder outputs have hidden_size too); attention, ``bahdanau`` or Luong's ``dot``, ``general`` or
    ``concat``; input_feeding (Luong only); features_dim, the output features' size; dropout, between layers."""

    def __init__(
        self,
        cell: Literal["gru", "lstm"],
        input_dim: int,
        hidden_size: int,
        layers: int,
        attention: AttentionKind,
        input_feeding: bool,
        features_dim: int,
        dropout: float,
    ):
        super().__init__()
        H = hidden_size
        self.luong = attention != "bahdanau"
        self.input_feeding = self.luong and input_feeding
        fed = features_dim if self.input_feeding else 0 if self.luong else H  # Luong: f_{t-1}; Bahdanau: c_t
        self.attention = Attention(attention, query_dim=H, key_dim=H, attention_dim=H)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(input_dim + fed, H, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.combine = nn.Linear(2 * H, features_dim)  # W of f_t = tanh(W [c_t; h_t])

    def memory(self, encoder_outputs: torch.Tensor, pad_mask: torch.Tensor) -> EncoderMemory:
        """encoder outputs (B, S, H) -> what every position attends to, with the keys projected once."""
        return EncoderMemory(encoder_outputs, self.attention.project_keys(encoder_outputs), pad_mask)

    def features(self, context: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """f = tanh(W [c; h]): contexts and RNN outputs (..., H) -> features (..., F)."""
        return torch.tanh(self.combine(torch.cat([context, out], -1)))

    def attend(self, query: torch.Tensor, memory: EncoderMemory) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, H) or (B, T, H) -> context (B, [T,] H) and weights (B, [T,] S)."""
        return self.attention(query, memory.keys, memory.values, memory.pad_mask)

    def position(self, y: torch.Tensor, hidden, feed: torch.Tensor, memory: EncoderMemory):
        """One position of the recurrence: y (B, E), hidden in torch's layout ((layers, B, H), an LSTM's a pair),
        feed f_{t-1} (B, F) -> context c_t (B, H), RNN output h_t (B, H), the new hidden, the weights (B, S)."""
        if self.luong:
            out, hidden = run_rnn(self.rnn, (torch.cat([y, feed], -1) if self.input_feeding else y)[:, None], hidden)
            context, weights = self.attend(out[:, 0], memory)  # the current state queries
        else:
            top = (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]  # h_{t-1}, top layer (B, H)
            context, weights = self.attend(top, memory)  # the previous state queries
            out, hidden = run_rnn(self.rnn, torch.cat([y, context], -1)[:, None], hidden)
        return context, out[:, 0], hidden, weights

    def forward(self, embedded: torch.Tensor, state: Seq2SeqState) -> tuple[torch.Tensor, Seq2SeqState, torch.Tensor]:
        """embedded (B, T, E), the next T target inputs -> features (B, T, F), the state after the last, and the
        attention weights (B, T, S) of every position."""
        memory, hidden = state.memory.value, state.rnn.to_torch()
        if self.luong and not self.input_feeding:  # no position waits on the last one's attention
            out, hidden = run_rnn(self.rnn, embedded, hidden)  # (B, T, H): the whole target in one call
            context, weights = self.attend(out, memory)  # (B, T, H), (B, T, S)
            features = self.features(context, out)
        else:
            feed, contexts, outs, weights, fed = state.feed, [], [], [], []
            for t in range(embedded.shape[1]):
                context, out, hidden, w = self.position(embedded[:, t], hidden, feed, memory)
                if self.input_feeding:
                    feed = self.features(context, out)  # (B, F): the next position's input
                    fed.append(feed)
                contexts.append(context), outs.append(out), weights.append(w)
            if self.input_feeding:
                features = torch.stack(fed, 1)
            else:  # Bahdanau: no position reads the last one's features, so all in one product after the loop
                features = self.features(torch.stack(contexts, 1), torch.stack(outs, 1))
            weights = torch.stack(weights, 1)
        return features, Seq2SeqState(RNNState.from_torch(hidden), features[:, -1], state.memory), weights
