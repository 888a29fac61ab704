"""Batched beam search: B inputs x K beams as one (B*K)-row program.

Each step scores every (beam, token) extension, keeps the 2K best per input, finalizes
the EOS extensions ranked within the top K, and continues with the K best non-EOS ones
(there are always K of them among 2K: each beam contributes one EOS candidate at most).
An input is done when it reaches its length limit (its open beams are finalized as they
are) or when it holds ``n_best`` finished hypotheses and no open beam can still beat the
n-th best of them, given the length penalty. Done inputs leave the batch, so later steps
run on fewer rows; encoder memory (``nested.Static``) is expanded to beams once.
"""

from __future__ import annotations

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


def beam_search(model, start: Start, limits: torch.Tensor, opts: DecodingOptions):
    B, V = start.log_probs.shape
    K, device = opts.beam_size, start.log_probs.device
    expand = torch.arange(B, device=device).repeat_interleave(K)
    state, log_probs = model.reorder_state(start.state, expand), start.log_probs[expand]  # (B*K, V)
    attention = None if start.attention is None else start.attention[expand]  # (B*K, S)
    scores = torch.full((B, K), NEG_INF, device=device)
    scores[:, 0] = 0  # one live beam per input at the start, so the K first picks differ
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    attention_history = None if attention is None else attention.new_zeros(B * K, 0, attention.shape[-1])
    items = torch.arange(B, device=device)  # the input each block of K rows belongs to
    finished = [Finished(opts.n_best, opts.length_penalty) for _ in range(B)]
    host_limits = limits.tolist()

    for t in decoding_steps(limits, opts):
        R = len(items)
        allowed = mask_early_eos(log_probs, t, opts.min_len, model.eos_id)
        # An input's 2K best extensions lie among its beams' own 2K best tokens (a beam's score shifts all of
        # its tokens alike), so each beam ranks its tokens first and no (R*K, V) sum of scores is formed.
        per_beam = min(2 * K, V)
        beam_best, beam_tokens = allowed.topk(per_beam, dim=1)  # (R*K, per_beam)
        candidates = (scores.view(R * K, 1) + beam_best).view(R, K * per_beam)
        top_scores, top_index = candidates.topk(2 * K, dim=1)  # (R, 2K), best first
        beam, token = top_index // per_beam, beam_tokens.view(R, K * per_beam).gather(1, top_index)
        rows = torch.arange(R, device=device)[:, None] * K + beam  # (R, 2K) the row each candidate extends

        def hypothesis_of(r: int, j: int):
            row = int(rows[r, j])
            tokens = torch.cat([history[row], token[r, j : j + 1]])
            weights = None if attention is None else torch.cat([attention_history[row], attention[row : row + 1]])
            return tokens, float(top_scores[r, j]), weights

        is_eos = token == model.eos_id if model.eos_id is not None else torch.zeros_like(token, dtype=torch.bool)
        final_eos = is_eos & (torch.arange(2 * K, device=device) < K) & (top_scores > NEG_INF)
        for r, j in final_eos.nonzero().tolist():
            finished[int(items[r])].add(*hypothesis_of(r, j))

        # The K best non-EOS candidates continue.
        is_open = ~is_eos
        keep_rank = is_open & (is_open.cumsum(dim=1) <= K)
        pick = keep_rank.nonzero()[:, 1].view(R, K)  # (R, K) candidate positions, best first
        open_scores = top_scores.gather(1, pick)
        open_rows, open_tokens = rows.gather(1, pick), token.gather(1, pick)

        # Decided on the host, from lists read once per step (cheaper than reading tensors row by row).
        keep_list = []
        for r, (item, best_open) in enumerate(zip(items.tolist(), open_scores[:, 0].tolist())):
            limit = host_limits[item]
            if t + 1 >= limit:  # out of length: the open beams end here, unfinished
                row_scores = top_scores[r].tolist()
                for j in pick[r].tolist():
                    if row_scores[j] > NEG_INF:
                        finished[item].add(*hypothesis_of(r, j))
            elif not finished[item].cannot_improve(best_open, t + 2, limit):
                keep_list.append(r)
        if not keep_list:
            break
        keep = torch.tensor(keep_list, device=device)
        flat = open_rows[keep].flatten()  # (R' * K,) source row of every continuing beam
        history = torch.cat([history[flat], open_tokens[keep].flatten()[:, None]], dim=1)
        if attention is not None:
            attention_history = torch.cat([attention_history[flat], attention[flat][:, None]], dim=1)
        scores, items = open_scores[keep], items[keep]
        log_probs, state, attention = start.step(open_tokens[keep].flatten(), model.reorder_state(state, flat))
    return [f.hypotheses[: opts.n_best] for f in finished]
