"""Decoding written once for every zoo model, over the incremental-state protocol.

A model implements:
    encode(src, src_mask)                    -> memory        (None for language models)
    init_state(memory, src_mask, batch_size) -> state         (a nest of batch-first tensors)
    step(tokens, state)                      -> (log_probs, state)   tokens (B,), log_probs (B, V)
    reorder_state(state, index)              -> state         (default: gather every tensor on dim 0)
and gets ``generate``. Strategies so far: ``greedy`` and ``sample`` (with temperature).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from zoo.nested import map_tensors

Strategy = Literal["greedy", "sample"]


class DecodingMixin:
    def encode(self, src: torch.Tensor | None, src_mask: torch.Tensor | None) -> Any:
        return None

    def init_state(self, memory: Any, src_mask: torch.Tensor | None, batch_size: int) -> Any:
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def reorder_state(self, state: Any, index: torch.Tensor) -> Any:
        return map_tensors(lambda t: t.index_select(0, index), state)

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        max_new_tokens: int,
        strategy: Strategy = "sample",
        temperature: float = 1.0,
        seed: int | None = None,
        eos_id: int | None = None,
    ) -> torch.Tensor:
        """Continue each row of ``prompt`` (B, P), P >= 1; returns the new tokens (B, <= max_new_tokens).

        After ``eos_id`` a row emits only ``eos_id``; decoding stops once every row has.
        """
        check_decoding_options(strategy, temperature, max_new_tokens)
        if prompt.dim() != 2 or prompt.shape[1] < 1:
            raise ValueError(f"prompt must be (batch, length >= 1) token ids, got shape {tuple(prompt.shape)}")
        was_training = self.training
        self.eval()
        try:
            generator = torch.Generator(device=prompt.device)
            generator.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))
            state = self.init_state(self.encode(None, None), None, prompt.shape[0])
            for t in range(prompt.shape[1]):
                log_probs, state = self.step(prompt[:, t], state)  # (B, V)
            finished = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
            out = []
            for _ in range(max_new_tokens):
                token = choose_next(log_probs, strategy, temperature, generator)  # (B,)
                if eos_id is not None:
                    token = token.masked_fill(finished, eos_id)
                    finished |= token == eos_id
                out.append(token)
                if eos_id is not None and bool(finished.all()):
                    break
                log_probs, state = self.step(token, state)
            return torch.stack(out, dim=1) if out else prompt.new_zeros(prompt.shape[0], 0)
        finally:
            self.train(was_training)


def check_decoding_options(strategy: str, temperature: float, max_new_tokens: int) -> None:
    if strategy not in ("greedy", "sample"):
        raise ValueError(f"strategy must be 'greedy' or 'sample', got {strategy!r}")
    if not temperature > 0:
        raise ValueError(
            f"temperature must be > 0, got {temperature}. Fix: use a small value such as 0.5 for "
            f"conservative samples, or strategy 'greedy' for the single most likely continuation."
        )
    if max_new_tokens < 0:
        raise ValueError(f"the number of tokens to generate must be >= 0, got {max_new_tokens}")


def choose_next(
    log_probs: torch.Tensor, strategy: Strategy, temperature: float, generator: torch.Generator
) -> torch.Tensor:
    if strategy == "greedy":
        return log_probs.argmax(dim=-1)
    probs = torch.softmax(log_probs / temperature, dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
