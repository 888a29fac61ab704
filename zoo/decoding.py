"""Decoding written once for every zoo model, over the incremental-state protocol.

A model implements:
    encode(src, src_pad_mask)                    -> memory   (None for language models)
    init_state(memory, src_pad_mask, batch_size) -> state    (a nest of batch-first tensors;
                                                               wrap encoder outputs in nested.Static)
    step(tokens, state)                          -> (log_probs, state)  tokens (R,), log_probs (R, V);
                                                  a dict state may carry "attention" (R, S)
    reorder_state(state, index)                  -> state    (default: nested.gather_rows)
optionally
    prefill(prompt, state)  -> (log_probs, state)  the prompt (B, P) in one pass (default: P steps)
    with_attention(state)   -> state  asks for "attention" in the states that follow, called when
                                      return_attention is set (for models that compute it only on
                                      request; default: the state unchanged)
and sets ``eos_id`` (None: no end token), for encoder-decoders ``bos_id``, and for models with a
fixed number of positions ``context_size`` (a language model's prompt + new tokens, a decoder's
target tokens, must fit). It then has
``generate``: greedy, beam search (zoo/beam_search.py) or sampling (zoo/sequential_decoding.py).

Scores: every hypothesis carries ``log_prob``, the sum of its tokens' log-probabilities
under the model (EOS included; temperature and top-k/top-p do not change it), and
``score = log_prob / lp(L)`` with GNMT's length penalty lp(L) = ((5 + L) / 6) ** alpha,
L = the hypothesis' own token count (EOS included). alpha = 0 means no penalty.
Beam search ranks by ``score``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Iterable, Literal

import torch
from tqdm import tqdm

from zoo.nested import gather_rows

Strategy = Literal["greedy", "beam", "sample"]


@dataclass
class Hypothesis:
    tokens: torch.Tensor  # (L,) generated ids, prompt excluded; ends in eos_id when it finished
    log_prob: float  # sum of the tokens' log-probabilities
    score: float  # log_prob / length_penalty(L, alpha)
    attention: torch.Tensor | None = None  # (L, S) for models that report attention


def length_penalty(length: int | torch.Tensor, alpha: float):
    """GNMT (Wu et al. 2016): ((5 + L) / 6) ** alpha."""
    return ((5 + length) / 6) ** alpha


@dataclass(frozen=True)
class DecodingOptions:
    strategy: Strategy = "greedy"
    beam_size: int = 5
    n_best: int = 1
    length_penalty: float = 1.0  # alpha of GNMT's penalty
    max_len: int = 200  # new tokens, at most
    # When either is set, each source's limit is a * src_len + b (never above max_len); an unset one counts
    # as 0. Translation models set both by default (their max_len_a/max_len_b hyperparameters).
    max_len_a: float | None = None
    max_len_b: int | None = None
    min_len: int = 0  # tokens before EOS may be emitted
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    return_attention: bool = False
    progress: bool = False  # a progress bar on stderr, one tick per generated token (for long generations)

    def check(self) -> None:
        if self.strategy not in ("greedy", "beam", "sample"):
            raise ValueError(f"strategy must be 'greedy', 'beam' or 'sample', got {self.strategy!r}")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.n_best < 1 or self.n_best > (self.beam_size if self.strategy == "beam" else 1):
            raise ValueError(
                f"n_best must lie in 1..beam_size ({self.beam_size}) for beam search and be 1 otherwise, "
                f"got {self.n_best}. Fix: raise beam_size, or use strategy 'beam' for n-best lists."
            )
        if (self.max_len_a or 0) < 0 or (self.max_len_b or 0) < 0:
            raise ValueError(f"max_len_a and max_len_b must be >= 0, got {self.max_len_a} and {self.max_len_b}")
        if self.max_len < self.min_len or self.min_len < 0:
            raise ValueError(f"need 0 <= min_len <= max_len, got min_len {self.min_len} and max_len {self.max_len}")
        if not self.temperature > 0:
            raise ValueError(
                f"temperature must be > 0, got {self.temperature}. Fix: use a small value such as 0.5 for "
                f"conservative samples, or strategy 'greedy' for the single most likely continuation."
            )
        sampling_only = {"temperature": self.temperature != 1.0, "top_k": self.top_k is not None,
                         "top_p": self.top_p is not None, "seed": self.seed is not None}  # fmt: skip
        ignored = [name for name, set_ in sampling_only.items() if set_ and self.strategy != "sample"]
        if ignored:
            raise ValueError(
                f"{', '.join(ignored)} only change(s) sampling, but strategy is {self.strategy!r}. "
                f"Fix: pass strategy='sample' (zoo generate: --strategy sample), or leave them out."
            )
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")


class DecodingMixin:
    eos_id: int | None = None
    bos_id: int | None = None
    context_size: int | None = None

    def encode(self, src: torch.Tensor | None, src_pad_mask: torch.Tensor | None) -> Any:
        return None

    def init_state(self, memory: Any, src_pad_mask: torch.Tensor | None, batch_size: int) -> Any:
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def decoding_defaults(self) -> dict[str, Any]:
        """This model's own defaults for ``generate`` (e.g. a translation model's length limits); the
        options a caller passes override them."""
        return {}

    def reorder_state(self, state: Any, index: torch.Tensor) -> Any:
        return gather_rows(state, index)

    def with_attention(self, state: Any) -> Any:
        """The state, asking ``step`` to report attention weights (models that always do: unchanged)."""
        return state

    def prefill(self, prompt: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Feed the prompt (B, P); returns the log-probs of the first new token. Override to do it in one pass."""
        for t in range(prompt.shape[1]):
            log_probs, state = self.step(prompt[:, t], state)  # (B, V)
        return log_probs, state

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor | None = None,
        src_pad_mask: torch.Tensor | None = None,
        prompt: torch.Tensor | None = None,
        **options,
    ) -> list[list[Hypothesis]]:
        """Decode a batch: ``src`` (B, S) for encoder-decoders, ``prompt`` (B, P >= 1) for language
        models (for encoder-decoders it defaults to <bos>). Returns, per input, its hypotheses
        best first (``n_best`` of them). ``options``: the fields of ``DecodingOptions``, over the
        model's ``decoding_defaults()``.
        """
        from zoo.beam_search import beam_search
        from zoo.sequential_decoding import decode_sequentially

        opts = DecodingOptions(**{**self.decoding_defaults(), **options})
        opts.check()
        prompt = self._prompt(src, prompt)
        limits = self._length_limits(src, src_pad_mask, prompt, opts)
        was_training = self.training
        self.eval()
        try:
            state = self.init_state(self.encode(src, src_pad_mask), src_pad_mask, prompt.shape[0])
            if opts.return_attention:
                state = self.with_attention(state)
            log_probs, state = self.prefill(prompt, state)
            if opts.strategy == "beam":
                return beam_search(self, state, log_probs, limits, opts)
            return decode_sequentially(self, state, log_probs, limits, opts)
        finally:
            self.train(was_training)

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
        """(B,) the most new tokens each input may get, within the model's ``context_size`` if it has one."""
        batch_size, max_len = prompt.shape[0], opts.max_len
        context = self.context_size
        if context is not None and prompt.shape[1] + max_len - 1 > context:  # the last new token is never fed back
            room = context - prompt.shape[1] + 1
            if src is None:  # a language model asked for more text than it can hold
                raise ValueError(
                    f"a prompt of {prompt.shape[1]} tokens plus {max_len} new ones exceeds this model's "
                    f"{context} positions. Fix: ask for at most {max(room, 0)} new tokens or shorten the prompt."
                )
            max_len = room  # translation: max_len is only a ceiling
        limits = torch.full((batch_size,), max_len, dtype=torch.long)
        if opts.max_len_a is not None or opts.max_len_b is not None:
            if src is None:
                raise ValueError("max_len_a and max_len_b scale with the source length: they need src. Fix: use max_len.")
            src_len = (~src_pad_mask).sum(1).cpu() if src_pad_mask is not None else torch.full_like(limits, src.shape[1])
            limits = ((opts.max_len_a or 0) * src_len + (opts.max_len_b or 0)).long().clamp(max=max_len)
        if bool((limits < max(opts.min_len, 1)).any()):
            raise ValueError(
                f"a length limit ({int(limits.min())} tokens, from max_len {opts.max_len}, max_len_a {opts.max_len_a} and "
                f"max_len_b {opts.max_len_b}) is below min_len {opts.min_len} or 1. Fix: raise max_len_b or max_len."
            )
        return limits


def decoding_steps(limits: torch.Tensor, opts: DecodingOptions) -> Iterable[int]:
    """The step numbers of a decoding loop (up to the longest limit), counted on a progress bar if asked."""
    return tqdm(range(int(limits.max())), disable=not opts.progress, unit="tok", file=sys.stderr, leave=False)


def mask_early_eos(log_probs: torch.Tensor, step: int, min_len: int, eos_id: int | None) -> torch.Tensor:
    """Forbid EOS as one of the first ``min_len`` tokens (log-prob -inf, not renormalised)."""
    if eos_id is None or step >= min_len:
        return log_probs
    masked = log_probs.clone()
    masked[:, eos_id] = float("-inf")
    return masked


def attention_of(state: Any) -> torch.Tensor | None:
    return state.get("attention") if isinstance(state, dict) else None
