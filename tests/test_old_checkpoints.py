"""Checkpoints written before the layers were restructured (the attention decoder as one module, Transformer
blocks with named norms) load strictly and compute what they computed then.

The files in tests/data/before_layer_refactor were written by the code at commit 1cd1c5c: tiny models of each
layout, with the log-probabilities they gave for fixed inputs (teacher-forced, step by step)."""

from pathlib import Path

import pytest
import torch

import zoo

OLD = Path(__file__).parent / "data" / "before_layer_refactor"
EXPECTED = torch.load(OLD / "expected.pt", weights_only=True)
NAMES = sorted(EXPECTED["log_probs"])


@torch.no_grad()
@pytest.mark.parametrize("name", NAMES)
def test_a_checkpoint_from_before_the_refactor_loads_and_gives_the_same_log_probs(name):
    model = zoo.load_model(OLD / f"{name}.ckpt").eval()
    src, tgt = EXPECTED["src"], EXPECTED["tgt"]
    if model.eos_id is None:  # a language model: the whole text in one pass
        log_probs, _, _ = model.decode(tgt, model.init_state(None, None, len(tgt)))
    else:
        pad = src == 0
        state = model.init_state(model.encode(src, pad), pad, len(src))
        rows = []
        for t in range(tgt.shape[1]):
            step_log_probs, state = model.step(tgt[:, t], state)
            rows.append(step_log_probs)
        log_probs = torch.stack(rows, 1)
    torch.testing.assert_close(log_probs, EXPECTED["log_probs"][name], atol=1e-5, rtol=0)
