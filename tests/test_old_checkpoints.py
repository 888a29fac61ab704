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


def test_a_resumed_old_checkpoint_gets_its_optimizer_state_in_todays_parameter_order():
    """A Transformer's final norms moved from the end of the model into their stacks: Adam's state, kept by
    position, must follow them by name, or each moment would meet a parameter of another shape."""
    from zoo.modules.renamed_weights import optimizer_state_in_current_order, rename_old_weights

    checkpoint = torch.load(OLD / "transformer-prenorm.ckpt", weights_only=True)
    model = zoo.load_model(OLD / "transformer-prenorm.ckpt")
    old_order, seen = [], set()
    for tensor in checkpoint["state_dict"].values():  # registration order then; tied weights once
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            old_order.append(tensor)
    moments = {i: {"exp_avg": torch.zeros_like(t), "step": torch.tensor(3.0)} for i, t in enumerate(old_order)}
    checkpoint["optimizer_states"] = [{"state": moments, "param_groups": [{"params": list(range(len(moments)))}]}]
    parameters = list(model.parameters())
    assert len(parameters) == len(old_order)
    assert any(m["exp_avg"].shape != p.shape for m, p in zip(moments.values(), parameters))  # the order did change
    optimizer_state_in_current_order(checkpoint, model)
    state = checkpoint["optimizer_states"][0]["state"]
    assert [state[i]["exp_avg"].shape for i in range(len(parameters))] == [p.shape for p in parameters]
    renamed = rename_old_weights(dict(checkpoint["state_dict"]), model.old_weight_names)
    own = model.state_dict()
    assert list(renamed) == [k for k in renamed if k in own] and set(renamed) == set(own)
