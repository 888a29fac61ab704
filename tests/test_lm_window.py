"""A TransformerLM generates past the context it trained on by sliding: when the context is full (``window``
positions), the last ``window // 2`` tokens are read again from position 0. Positions past the window were never
trained (the shipped model's loss per character goes from 1.5 to 3.3 there), so without it text turns to noise
after 128 characters."""

import pytest
import torch

from zoo import TransformerLM
from zoo.cli import ZooCLI
from zoo.generation.nested import join_rows
from zoo.hub.loading import load_model

WINDOW = 16


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    sizes = dict(d_model=16, heads=2, layers=2, ffn_dim=32, dropout=0.0, max_positions=32, window=WINDOW)
    return TransformerLM(vocab_size=11, **sizes).eval()


def reference(model, tokens: list[int]) -> torch.Tensor:
    """(T, V): each position's log-probabilities by full recomputation over its window, one token at a time."""
    context, out = [], []
    for token in tokens:
        if len(context) == WINDOW:
            context = context[-(WINDOW // 2) :]
        context.append(token)
        out.append(model.language_model_logits(torch.tensor([context]))[0, -1].log_softmax(-1))
    return torch.stack(out)


@torch.no_grad()
def test_decoding_past_the_window_equals_recomputing_each_window(model):
    tokens = torch.randint(0, 11, (70,))
    expected = reference(model, tokens.tolist())
    whole, _, _ = model.decode(tokens[None], model.init_state(None, None, 1))  # one call
    torch.testing.assert_close(whole[0], expected, atol=2e-5, rtol=0)
    log_probs, state, _ = model.decode(tokens[None, :5], model.init_state(None, None, 1))  # a prompt, then steps
    steps = [log_probs[0]]
    for token in tokens[5:]:
        log_probs, state, _ = model.decode(token.view(1, 1), state)
        steps.append(log_probs[0])
        assert state.caches[0].length <= WINDOW
    torch.testing.assert_close(torch.cat(steps), expected, atol=2e-5, rtol=0)


@torch.no_grad()
def test_rows_joined_at_other_lengths_slide_as_they_would_alone(model):
    """The API's continuous batching joins rows mid-decode (left-padded caches): each row slides on its own."""
    first, second = torch.randint(0, 11, (40,)), torch.randint(0, 11, (31,))
    _, state, _ = model.decode(first[None, :12], model.init_state(None, None, 1))
    _, joining, _ = model.decode(second[None, :3], model.init_state(None, None, 1))
    state = join_rows(state, joining)
    seen = []
    for t in range(28):  # row 0 reaches the window at its step 16, row 1 at 16 after joining with 3
        log_probs, state, _ = model.decode(torch.stack([first[12 + t], second[3 + t]])[:, None], state)
        seen.append(log_probs[:, 0])
    seen = torch.stack(seen, 1)  # (2, 28, V)
    torch.testing.assert_close(seen[0], reference(model, first.tolist())[12:40], atol=2e-5, rtol=0)
    torch.testing.assert_close(seen[1], reference(model, second[:31].tolist())[3:31], atol=2e-5, rtol=0)


def test_generation_goes_past_max_positions_with_a_window(model):
    (best,) = model.generate(prompt=torch.tensor([[1, 2, 3]]), max_len=100, strategy="greedy")[0]
    assert len(best.tokens) == 100 > model.hparams.max_positions
    beams = model.generate(prompt=torch.tensor([[1, 2, 3]]), max_len=40, strategy="beam", beam_size=3, n_best=3)[0]
    assert len(beams) == 3 and all(len(b.tokens) == 40 for b in beams)


def test_a_run_gives_the_model_the_length_of_its_training_windows(small_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--model", "zoo.TransformerLM", "--data", "datamodules.CharDataModule", "--data.source", str(small_corpus)]
    args += ["--data.mode", "stateless", "--data.seq_len", "24", "--trainer.logger", "false"]
    args += ["--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"]
    cli = ZooCLI([*args, "--trainer.default_root_dir", str(tmp_path)], run=False)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.model.window == 24 and cli.model.context_size is None
    (checkpoint,) = tmp_path.glob("**/*.ckpt")
    assert load_model(checkpoint).window == 24  # saved with the hyperparameters
    with pytest.raises(ValueError, match=r"window must lie in 2..max_positions \(32\), got 40"):
        TransformerLM(vocab_size=5, max_positions=32, window=40)
