"""Greedy decoding and sampling: one token per row per step, finished rows dropped from the batch."""

from __future__ import annotations

import torch

from zoo.generation.options import DecodingOptions, Hypothesis, Start, decoding_steps, length_penalty, mask_early_eos


def decode_sequentially(model, start: Start, limits: torch.Tensor, opts: DecodingOptions):
    state, log_probs, attention = start.state, start.log_probs, start.attention
    B, device = log_probs.shape[0], log_probs.device
    generator = None
    if opts.strategy == "sample":
        # Unseeded sampling draws its seed from the global generator (so seed_everything decides it), which
        # it never re-seeds: torch.seed() here used to make every later dropout mask of a run unrepeatable.
        seed = opts.seed if opts.seed is not None else int(torch.randint(2**62, (), device="cpu"))
        generator = torch.Generator(device=device).manual_seed(seed)
    limits = limits.to(device)
    out = torch.zeros(B, int(limits.max()), dtype=torch.long, device=device)
    lengths = torch.zeros(B, dtype=torch.long, device=device)
    total = torch.zeros(B, device=device)
    attention_out = [[] for _ in range(B)] if attention is not None else None
    rows = torch.arange(B, device=device)  # the input each active row belongs to
    for t in decoding_steps(limits, opts):
        allowed = mask_early_eos(log_probs, t, opts.min_len, model.eos_id)
        token = choose(allowed, opts, generator)  # (R,)
        out[rows, t] = token
        lengths[rows] = t + 1
        total[rows] += log_probs.gather(1, token[:, None]).squeeze(1)
        if attention_out is not None:
            for row, weights in zip(rows.tolist(), attention):
                attention_out[row].append(weights)
        done = t + 1 >= limits[rows]
        if model.eos_id is not None:
            done |= token == model.eos_id
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            rows, token = rows[keep], token[keep]
            state = model.reorder_state(state, keep)
        log_probs, state, attention = model.next_log_probs(token[:, None], state, opts.return_attention)
    return [
        [
            Hypothesis(
                tokens=out[b, : lengths[b]],
                log_prob=float(total[b]),
                score=float(total[b] / length_penalty(int(lengths[b]), opts.length_penalty)),
                attention=torch.stack(attention_out[b]) if attention_out is not None else None,
            )
        ]
        for b in range(B)
    ]


def choose(log_probs: torch.Tensor, opts: DecodingOptions, generator: torch.Generator) -> torch.Tensor:
    """(R, V) log-probabilities -> (R,) tokens: the argmax, or a sample from the filtered distribution."""
    if opts.strategy == "greedy":
        return log_probs.argmax(dim=-1)
    logits = log_probs / opts.temperature
    if opts.top_k is not None and opts.top_k < logits.shape[-1]:
        kth = logits.topk(opts.top_k, dim=-1).values[:, -1:]  # (R, 1)
        # Tokens tied with the k-th all stay: which of equals to drop would depend on their order in the vocabulary.
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if opts.top_p is not None and opts.top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above each token
        drop_sorted = before >= opts.top_p  # keep the smallest prefix whose mass reaches top_p
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)
