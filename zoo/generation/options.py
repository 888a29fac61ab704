"""What every decoding strategy shares: the options, a hypothesis, GNMT's length penalty, the step loop.

Scores: every hypothesis carries ``log_prob``, the sum of its tokens' log-probabilities
under the model (EOS included; temperature and top-k/top-p do not change it), and
``score = log_prob / lp(L)`` with GNMT's length penalty lp(L) = ((5 + L) / 6) ** alpha,
L = the hypothesis' own token count (EOS included). alpha = 0 means no penalty.
Beam search ranks by ``score``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from tqdm import tqdm

from datamodules.checks import require_in

Strategy = Literal["greedy", "beam", "sample"]


@dataclass
class Hypothesis:
    tokens: torch.Tensor  # (L,) generated ids, prompt excluded; ends in eos_id when it finished
    log_prob: float  # sum of the tokens' log-probabilities
    score: float  # log_prob / length_penalty(L, alpha)
    attention: torch.Tensor | None = None  # (L, S) for models that report attention


@dataclass
class Start:
    """Where a decoding loop begins: the first new token's log-probs (B, V), the state after the prompt and, when
    attention is asked for, the attention behind those log-probs (B, S)."""

    log_probs: torch.Tensor
    state: Any
    attention: torch.Tensor | None


def length_penalty(length: int | torch.Tensor, alpha: float):
    """GNMT (Wu et al. 2016): ((5 + L) / 6) ** alpha."""
    return ((5 + length) / 6) ** alpha


def option(default: Any, help: str):
    """A DecodingOptions field with its help text (the commands' --help shows it)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class DecodingOptions:
    """Every option of ``generate``, declared once: the `zoo generate` and `zoo translate` flags are built
    from these fields and their help (zoo/cli/decoding_flags.py)."""

    strategy: Strategy = option("greedy", "greedy, beam or sample")
    beam_size: int = option(5, "beam search: hypotheses kept per input")
    n_best: int = option(1, "beam search: hypotheses returned per input, best first")
    length_penalty: float = option(1.0, "alpha of GNMT's length penalty ((5 + L) / 6) ** alpha; 0: none")
    max_len: int = option(200, "new tokens, at most")
    # When either is set, each source's limit is a * src_len + b (never above max_len); an unset one counts
    # as 0. Translation models set both by default (their max_len_a/max_len_b hyperparameters).
    max_len_a: float | None = option(None, "length limit a * source length + b (default: the model's)")
    max_len_b: int | None = option(None, "see max_len_a")
    min_len: int = option(0, "tokens before the end token may be chosen")
    temperature: float = option(1.0, "sampling: > 0, lower is more conservative")
    top_k: int | None = option(None, "sampling: only the k most likely tokens")
    top_p: float | None = option(None, "sampling: only the most likely tokens up to probability mass p")
    seed: int | None = option(None, "sampling: makes it repeatable")
    return_attention: bool = option(False, "return attention weights with each hypothesis")
    progress: bool = option(False, "a progress bar on stderr, one tick per generated token")

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
        require_in("(-inf, inf)", length_penalty=self.length_penalty)
        require_in("[0, inf)", max_len_a=self.max_len_a, temperature=self.temperature)
        require_in("(0, 1]", top_p=self.top_p)
        if (self.max_len_b or 0) < 0:
            raise ValueError(f"max_len_b must be >= 0, got {self.max_len_b}")
        if self.max_len < self.min_len or self.min_len < 0:
            raise ValueError(f"need 0 <= min_len <= max_len, got min_len {self.min_len} and max_len {self.max_len}")
        if not self.temperature > 0:
            raise ValueError(
                f"temperature must be > 0, got {self.temperature}. Fix: use a small value such as 0.5 for "
                f"conservative samples, or strategy 'greedy' for the single most likely continuation."
            )
        sampling_only = {
            "temperature": self.temperature != 1.0,
            "top_k": self.top_k is not None,
            "top_p": self.top_p is not None,
            "seed": self.seed is not None,
        }
        ignored = [name for name, set_ in sampling_only.items() if set_ and self.strategy != "sample"]
        if ignored:
            raise ValueError(
                f"{', '.join(ignored)} only change(s) sampling, but strategy is {self.strategy!r}. "
                f"Fix: pass strategy='sample' (zoo generate: --strategy sample), or leave them out."
            )
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")


def length_limits(
    opts: DecodingOptions,
    batch_size: int,
    prompt_length: int,
    context_size: int | None,
    source_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) the most new tokens each input may get, for every engine: ``max_len``, within a model's
    ``context_size`` positions if it has one (the prompt and the new tokens but the last, which is never fed
    back), and with ``max_len_a``/``max_len_b`` ``a * source length + b`` (source lengths (B,), <eos>
    included) under that ceiling. On the CPU, where the decoding loops read it."""
    max_len = opts.max_len
    if context_size is not None and prompt_length + max_len - 1 > context_size:
        if source_lengths is None:  # a language model asked for more text than it can hold
            raise ValueError(
                f"a prompt of {prompt_length} tokens plus {max_len} new ones exceeds this model's "
                f"{context_size} positions (prompt and new tokens together; a char model's tokens are characters). "
                f"Fix: {_fitting_lengths(prompt_length, max_len, context_size)}."
            )
        max_len = context_size - prompt_length + 1  # translation: max_len is only a ceiling
    limits = torch.full((batch_size,), max_len, dtype=torch.long, device="cpu")  # (not the default device)
    if opts.max_len_a is not None or opts.max_len_b is not None:
        if source_lengths is None:
            raise ValueError("max_len_a and max_len_b scale with the source length: they need src. Fix: use max_len.")
        limits = ((opts.max_len_a or 0) * source_lengths + (opts.max_len_b or 0)).long().clamp(max=max_len)
    if bool((limits < max(opts.min_len, 1)).any()):
        raise ValueError(
            f"a length limit ({int(limits.min())} tokens, from max_len {opts.max_len}, max_len_a {opts.max_len_a} and "
            f"max_len_b {opts.max_len_b}) is below min_len {opts.min_len} or 1. Fix: raise max_len_b or max_len."
        )
    return limits


def _fitting_lengths(prompt: int, new: int, context: int) -> str:
    """What to ask for instead when ``prompt`` + ``new`` - 1 tokens exceed ``context``: only fixes that fit."""
    fixes = []
    if context - prompt + 1 >= 1:
        fixes.append(f"ask for at most {context - prompt + 1} new tokens")
    if context - new + 1 >= 1:
        fixes.append(f"shorten the prompt to at most {context - new + 1} tokens (its end)")
    half = context // 2
    return " or ".join(fixes) or f"shorten the prompt to at most {half} tokens and ask for at most {context - half + 1}"


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
