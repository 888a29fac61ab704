"""Batched beam search: B inputs x K beams as one (B*K)-row program.

Each step runs four helpers: ``extend`` scores every (beam, token) extension and keeps the 2K
best per input; ``finish`` finalizes the EOS extensions ranked within the top K; ``rank``
keeps the K best non-EOS ones (there are always K of them among 2K: each beam contributes one
EOS candidate at most) and decides which inputs go on; ``reorder`` gathers the continuing
beams' histories and states and runs the model one step. An input is done when it reaches its
length limit (its open beams are finalized as they are) or when it holds ``n_best`` finished
hypotheses and no open beam can still beat the n-th best of them, given the length penalty.
Done inputs leave the batch, so later steps run on fewer rows; encoder memory
(``nested.Static``) is expanded to beams once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from zoo.generation.options import DecodingOptions, Hypothesis, Start, decoding_steps, length_penalty, mask_early_eos

NEG_INF = float("-inf")


class Finished:
    """The finished hypotheses of one input, best first."""

    def __init__(self, n_best: int, alpha: float):
        self.n_best, self.alpha = n_best, alpha
        self.hypotheses: list[Hypothesis] = []

    def add(self, tokens: torch.Tensor, log_prob: float, attention: torch.Tensor | None) -> None:
        score = log_prob / length_penalty(len(tokens), self.alpha)
        self.hypotheses.append(Hypothesis(tokens, log_prob, score, attention))
        self.hypotheses.sort(key=lambda h: -h.score)  # stable: earlier (shorter) first on ties

    def cannot_improve(self, best_open_log_prob: float, next_length: int, limit: int) -> bool:
        """No open beam can reach a score above the n-th best finished one."""
        if len(self.hypotheses) < self.n_best:
            return False
        if best_open_log_prob == NEG_INF:
            return True
        # log-probs only fall as a beam grows, and dividing a negative log-prob by the largest
        # penalty ahead gives its best possible score; the penalty is monotonic in length.
        largest_penalty = max(length_penalty(next_length, self.alpha), length_penalty(limit, self.alpha))
        return best_open_log_prob / largest_penalty <= self.hypotheses[self.n_best - 1].score


@dataclass
class Beams:
    """The open hypotheses: K rows per input still decoding (R inputs, R*K rows, t tokens so far)."""

    items: torch.Tensor  # (R,) the input each block of K rows belongs to
    scores: torch.Tensor  # (R, K) the log-probability of each beam so far
    history: torch.Tensor  # (R*K, t) its tokens
    attention_history: torch.Tensor | None  # (R*K, t, S) the attention behind them
    log_probs: torch.Tensor  # (R*K, V) of each beam's next token
    attention: torch.Tensor | None  # (R*K, S) behind those log-probs
    state: Any  # the model's state, R*K rows


@dataclass
class Candidates:
    """The 2K best extensions of each input's beams, best first."""

    scores: torch.Tensor  # (R, 2K) log-probability of beam + token
    rows: torch.Tensor  # (R, 2K) the beam row each one extends
    tokens: torch.Tensor  # (R, 2K) the token it adds


def beam_search(
    model, start: Start, limits: torch.Tensor, opts: DecodingOptions, observer=None
) -> list[list[Hypothesis]]:
    """``observer``, when given, is called after every step with (beams, candidates, is_eos, pick, keep), as
    ``rank`` leaves them: what zoo/generation/beam_tree.py draws the search from."""
    B = start.log_probs.shape[0]
    beams = expand_to_beams(model, start, opts.beam_size)
    finished = [Finished(opts.n_best, opts.length_penalty) for _ in range(B)]
    host_limits = limits.tolist()
    for t in decoding_steps(limits, opts):
        candidates = extend(beams, t, opts, model.eos_id)
        is_eos = finish(beams, candidates, finished, model.eos_id)
        pick, keep = rank(beams, candidates, is_eos, finished, host_limits, t)
        if observer is not None:
            observer(beams, candidates, is_eos, pick, keep)
        if not keep:
            break
        beams = reorder(model, beams, candidates, pick, torch.tensor(keep, device=pick.device), opts)
    return [f.hypotheses[: opts.n_best] for f in finished]


def expand_to_beams(model, start: Start, K: int) -> Beams:
    """One input's row becomes K rows; only the first is live, so that the first K picks differ."""
    B, device = start.log_probs.shape[0], start.log_probs.device
    expand = torch.arange(B, device=device).repeat_interleave(K)
    scores = torch.full((B, K), NEG_INF, device=device)
    scores[:, 0] = 0
    attention = None if start.attention is None else start.attention[expand]  # (B*K, S)
    return Beams(
        items=torch.arange(B, device=device),
        scores=scores,
        history=torch.zeros(B * K, 0, dtype=torch.long, device=device),
        attention_history=None if attention is None else attention.new_zeros(B * K, 0, attention.shape[-1]),
        log_probs=start.log_probs[expand],  # (B*K, V)
        attention=attention,
        state=model.reorder_state(start.state, expand),
    )


def extend(beams: Beams, t: int, opts: DecodingOptions, eos_id: int | None) -> Candidates:
    """Every input's 2K best (beam, token) extensions. They lie among its beams' own 2K best tokens (a beam's
    score shifts all of its tokens alike), so each beam ranks its tokens first and no (R*K, V) sum is formed."""
    R, K = beams.scores.shape
    allowed = mask_early_eos(beams.log_probs, t, opts.min_len, eos_id)
    per_beam = min(2 * K, allowed.shape[1])
    beam_best, beam_tokens = allowed.topk(per_beam, dim=1)  # (R*K, per_beam)
    sums = (beams.scores.view(R * K, 1) + beam_best).view(R, K * per_beam)
    scores, index = sums.topk(2 * K, dim=1)  # (R, 2K), best first
    rows = torch.arange(R, device=scores.device)[:, None] * K + index // per_beam
    return Candidates(scores, rows, beam_tokens.view(R, K * per_beam).gather(1, index))


def hypothesis(beams: Beams, candidates: Candidates, r: int, j: int) -> tuple[torch.Tensor, float, Any]:
    """Candidate j of input block r as (tokens, log_prob, attention), what ``Finished.add`` takes."""
    row = int(candidates.rows[r, j])
    tokens = torch.cat([beams.history[row], candidates.tokens[r, j : j + 1]])
    if beams.attention is None:
        return tokens, float(candidates.scores[r, j]), None
    return (
        tokens,
        float(candidates.scores[r, j]),
        torch.cat([beams.attention_history[row], beams.attention[row : row + 1]]),
    )


def finish(beams: Beams, candidates: Candidates, finished: list[Finished], eos_id: int | None) -> torch.Tensor:
    """Finalize the EOS extensions ranked within the top K; returns which candidates are EOS (R, 2K)."""
    K = beams.scores.shape[1]
    if eos_id is None:
        return torch.zeros_like(candidates.tokens, dtype=torch.bool)
    is_eos = candidates.tokens == eos_id
    within_k = torch.arange(2 * K, device=is_eos.device) < K
    for r, j in (is_eos & within_k & (candidates.scores > NEG_INF)).nonzero().tolist():
        finished[int(beams.items[r])].add(*hypothesis(beams, candidates, r, j))
    return is_eos


def rank(
    beams: Beams,
    candidates: Candidates,
    is_eos: torch.Tensor,
    finished: list[Finished],
    limits: list[int],
    t: int,
) -> tuple[torch.Tensor, list[int]]:
    """The K best non-EOS candidates of each input, (R, K) positions best first, and the blocks that go on: an
    input out of length has its open beams finalized as they are; one that cannot improve is dropped."""
    K = beams.scores.shape[1]
    is_open = ~is_eos
    pick = (is_open & (is_open.cumsum(dim=1) <= K)).nonzero()[:, 1].view(-1, K)  # (R, K)
    best_open = candidates.scores.gather(1, pick[:, :1]).squeeze(1).tolist()
    keep = []
    for r, item in enumerate(beams.items.tolist()):  # on the host, from lists read once per step
        if t + 1 >= limits[item]:
            row_scores = candidates.scores[r].tolist()
            for j in pick[r].tolist():
                if row_scores[j] > NEG_INF:
                    finished[item].add(*hypothesis(beams, candidates, r, j))
        elif not finished[item].cannot_improve(best_open[r], t + 2, limits[item]):
            keep.append(r)
    return pick, keep


def reorder(
    model, beams: Beams, candidates: Candidates, pick: torch.Tensor, keep: torch.Tensor, opts: DecodingOptions
) -> Beams:
    """The kept inputs' K picked candidates become the beams: histories and state gathered, one model step run."""
    rows = candidates.rows.gather(1, pick)[keep].flatten()  # (R'*K,) the beam row each new beam extends
    tokens = candidates.tokens.gather(1, pick)[keep].flatten()  # (R'*K,)
    attention_history = beams.attention_history
    if beams.attention is not None:
        attention_history = torch.cat([attention_history[rows], beams.attention[rows][:, None]], dim=1)
    log_probs, state, attention = model.next_log_probs(
        tokens[:, None], model.reorder_state(beams.state, rows), opts.return_attention
    )
    return Beams(
        items=beams.items[keep],
        scores=candidates.scores.gather(1, pick)[keep],
        history=torch.cat([beams.history[rows], tokens[:, None]], dim=1),
        attention_history=attention_history,
        log_probs=log_probs,
        attention=attention,
        state=state,
    )
