"""Decoding written once for every zoo model, over the incremental-state protocol.

A model implements:
    encode(src, src_pad_mask)                    -> memory   (default None, for language models)
    init_state(memory, src_pad_mask, batch_size) -> state    (a nest of batch-first tensors, typically a
                                                               dataclass; wrap encoder outputs in nested.Static)
    decode(tokens, state, attention=False)       -> (log_probs, state, weights)
        the one primitive: tokens (R, T) are the next T tokens of every row; log_probs (R, T, V) the
        distribution of the token after each of them; state the state after all T; weights (R, T, S) the
        attention over the source behind each position, when ``attention`` is asked and the model has it
        (else None). A prompt is one call with T = P, a decoding step one with T = 1.
    reorder_state(state, index)                  -> state    (default: nested.gather_rows)
and sets ``eos_id`` (None: no end token), for encoder-decoders ``bos_id``, and for models with a
fixed number of positions ``context_size`` (a language model's prompt + new tokens, a decoder's
target tokens, must fit). The mixin derives ``step`` (T = 1) and ``next_log_probs`` (the last
position only), and gives ``generate``: greedy, beam search (beam_search.py) or sampling
(sequential_decoding.py), with the options and scores of options.py.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any

import torch

from zoo.generation.beam_search import beam_search
from zoo.generation.nested import gather_rows
from zoo.generation.options import DecodingOptions, Hypothesis, Start, length_limits
from zoo.generation.sequential_decoding import decode_sequentially


class DecodingMixin(ABC):
    eos_id: int | None = None
    bos_id: int | None = None
    context_size: int | None = None

    def encode(self, src: torch.Tensor | None, src_pad_mask: torch.Tensor | None) -> Any:
        return None

    @abstractmethod
    def init_state(self, memory: Any, src_pad_mask: torch.Tensor | None, batch_size: int) -> Any:
        """The decoding state of ``batch_size`` rows before the first token (see the module docstring)."""

    @abstractmethod
    def decode(
        self, tokens: torch.Tensor, state: Any, attention: bool = False
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        """tokens (R, T) -> log-probabilities (R, T, V) after each token, the state after all T, and with
        ``attention`` the attention weights (R, T, S) behind each position (None for models without them)."""

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """``decode`` with T = 1: tokens (R,) -> log-probabilities (R, V) of the next token, and the state."""
        log_probs, state, _ = self.decode(tokens[:, None], state)
        return log_probs[:, 0], state

    def next_log_probs(
        self, tokens: torch.Tensor, state: Any, attention: bool = False
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        """tokens (R, T) -> log-probabilities (R, V) of the token after the last, the state, and with ``attention``
        the weights (R, S) behind them: what every decoding loop reads."""
        log_probs, state, weights = self.decode(tokens, state, attention)
        return log_probs[:, -1], state, None if weights is None else weights[:, -1]

    def decoding_defaults(self) -> dict[str, Any]:
        """This model's own defaults for ``generate`` (e.g. a translation model's length limits); the
        options a caller passes override them."""
        return {}

    def reorder_state(self, state: Any, index: torch.Tensor) -> Any:
        return gather_rows(state, index)

    def generate(
        self,
        src: torch.Tensor | None = None,
        src_pad_mask: torch.Tensor | None = None,
        prompt: torch.Tensor | None = None,
        beam_observer=None,
        **options,
    ) -> list[list[Hypothesis]]:
        """Decode a batch: ``src`` (B, S) for encoder-decoders, ``prompt`` (B, P >= 1) for language
        models (for encoder-decoders it defaults to <bos>). Returns, per input, its hypotheses
        best first (``n_best`` of them). ``options``: the fields of ``DecodingOptions``, over the
        model's ``decoding_defaults()``. ``beam_observer``: watches every step of a beam search (see
        ``beam_search``; zoo/generation/beam_tree.py records the tree of hypotheses with it).
        """
        opts = DecodingOptions(**{**self.decoding_defaults(), **options})
        opts.check()
        prompt = self._prompt(src, prompt)
        limits = self._length_limits(src, src_pad_mask, prompt, opts)
        was_training = self.training
        self.eval()
        try:
            # inference_mode rather than no_grad: 2-4% faster decoding (no view or version tracking per operator).
            with torch.inference_mode():
                state = self.init_state(self.encode(src, src_pad_mask), src_pad_mask, prompt.shape[0])
                start = Start(*self.next_log_probs(prompt, state, opts.return_attention))  # the prompt in one pass
                if opts.strategy == "beam":
                    results = beam_search(self, start, limits, opts, beam_observer)
                else:
                    results = decode_sequentially(self, start, limits, opts)
        finally:
            self.train(was_training)
        # Out here, copies are ordinary tensors: an inference tensor cannot be saved for backward, and a user may
        # train on what was generated (back-translation, self-training).
        return [[as_ordinary_tensors(h) for h in hypotheses] for hypotheses in results]

    def _prompt(self, src: torch.Tensor | None, prompt: torch.Tensor | None) -> torch.Tensor:
        if prompt is None and src is not None:
            if self.bos_id is None:
                raise ValueError(f"{type(self).__name__} has no bos_id to start decoding from: pass a prompt")
            return torch.full((src.shape[0], 1), self.bos_id, dtype=torch.long, device=src.device)
        if prompt is None or prompt.dim() != 2 or prompt.shape[1] < 1:
            shape = None if prompt is None else tuple(prompt.shape)
            raise ValueError(
                f"{type(self).__name__} needs a prompt to continue: token ids of shape (batch, length >= 1), "
                f"got {shape}. Fix: pass at least one token per row."
            )
        return prompt

    def _length_limits(self, src, src_pad_mask, prompt: torch.Tensor, opts: DecodingOptions) -> torch.Tensor:
        """(B,) the most new tokens each input may get (see options.length_limits)."""
        source_lengths = None
        if src is not None:  # <eos> included
            source_lengths = (
                (~src_pad_mask).sum(1).cpu()
                if src_pad_mask is not None
                else torch.full((len(src),), src.shape[1], device="cpu")
            )
        return length_limits(opts, prompt.shape[0], prompt.shape[1], self.context_size, source_lengths)


def as_ordinary_tensors(hypothesis: Hypothesis) -> Hypothesis:
    """``hypothesis`` with its tensors copied outside inference mode."""
    attention = None if hypothesis.attention is None else hypothesis.attention.clone()
    return dataclasses.replace(hypothesis, tokens=hypothesis.tokens.clone(), attention=attention)
