"""A shipped callback never ends a user's run: its settings are fitted to the data and the model before the
first step, and whatever error ends a run after it has trained, the trained state is saved and named."""

import re
import warnings

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from callbacks import SampleTextCallback, TranslationSamplesCallback
from tests.conftest import REPO, only, zoo_here
from zoo import CharRNN

CHAR_CONFIGS = [
    "char_rnn/shakespeare_stateful.yaml",
    "char_rnn/shakespeare_stateless.yaml",
    "transformer/shakespeare_char.yaml",
]
TINY_RUN = [  # in this process, so no W&B (one W&B run per process); the samples are generated all the same
    "--trainer.logger",
    "false",
    "--trainer.max_steps",
    "4",
    "--trainer.val_check_interval",
    "2",
    "--trainer.limit_val_batches",
    "2",
    "--trainer.enable_progress_bar",
    "false",
    "--data.init_args.seq_len",
    "16",
    "--data.init_args.batch_size",
    "4",
]
TINY_MODEL = {  # config folder -> options that make its model tiny
    "char_rnn": ["--model.init_args.hidden_size", "16", "--model.init_args.num_layers", "1"],
    "transformer": [
        "--model.init_args.d_model",
        "16",
        "--model.init_args.heads",
        "2",
        "--model.init_args.ffn_dim",
        "32",
    ],
}


class FailAtValidation(Callback):
    """An error in a hook after training has started (what a user's own callback might do)."""

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            raise RuntimeError("a bug in a callback")


@pytest.fixture
def corpus_without_the_prompt(small_corpus, tmp_path):
    """The configs sample after "ROMEO:"; this text has no capital letters and no colon."""
    path = tmp_path / "lower.txt"
    path.write_text(small_corpus.read_text().lower().replace(":", ";"))
    return path


@pytest.mark.parametrize("config", CHAR_CONFIGS)
def test_a_char_config_trains_on_a_corpus_without_its_prompt_characters(
    config, corpus_without_the_prompt, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    tiny = TINY_MODEL[config.split("/")[0]]
    source = ["--data.init_args.source", str(corpus_without_the_prompt)]
    with pytest.warns(UserWarning, match=r"the prompt 'ROMEO:' holds characters this corpus lacks \(':EMOR'\)"):
        code = zoo_here("fit", "--config", str(REPO / "configs" / config), *source, *TINY_RUN, *tiny)
    assert code == (0, ""), (code, capsys.readouterr().err[-2000:])
    only(tmp_path.glob("checkpoints/last.ckpt"))


def test_a_sample_longer_than_the_models_positions_slides_past_them(
    corpus_without_the_prompt, tmp_path, monkeypatch, capsys
):
    """A TransformerLM trained by `zoo fit` has a window (its data's seq_len), so its samples have no length
    limit; a model without one (an older checkpoint) has its sample shortened to its positions (the warning)."""
    monkeypatch.chdir(tmp_path)
    config = str(REPO / "configs" / "transformer" / "shakespeare_char.yaml")
    small = [*TINY_MODEL["transformer"], "--model.init_args.max_positions", "32", "--data.init_args.seq_len", "16"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = zoo_here(
            "fit", "--config", config, "--data.init_args.source", str(corpus_without_the_prompt), *TINY_RUN, *small
        )
    assert code == (0, ""), (code, capsys.readouterr().err[-2000:])
    assert not [w for w in caught if "do not fit the model's context" in str(w.message)]


def test_a_callback_that_cannot_work_with_the_model_is_refused_before_training(
    small_corpus, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    config = str(REPO / "configs" / "char_rnn" / "shakespeare_stateful.yaml")
    samples = ["--trainer.callbacks+=callbacks.TranslationSamplesCallback"]
    code, message = zoo_here(
        "fit",
        "--config",
        config,
        "--data.init_args.source",
        str(small_corpus),
        *TINY_RUN,
        *TINY_MODEL["char_rnn"],
        *samples,
    )
    assert code != 0 and "TranslationSamplesCallback translates, but CharRNN does not. Fix: remove it" in message
    assert not list(tmp_path.glob("**/*.ckpt"))
    with pytest.raises(ValueError, match="length must be a whole number >= 1"):
        SampleTextCallback(length=0)
    with pytest.raises(ValueError, match="n must be a whole number >= 1"):
        TranslationSamplesCallback(n=0)


def test_an_error_after_training_saves_the_state_and_says_where(small_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = str(REPO / "configs" / "char_rnn" / "shakespeare_stateful.yaml")
    args = ["--config", config, "--data.init_args.source", str(small_corpus), *TINY_RUN, *TINY_MODEL["char_rnn"]]
    with pytest.raises(RuntimeError, match="a bug in a callback"):
        zoo_here("fit", *args, "--trainer.callbacks+=tests.test_callbacks_never_end_a_run.FailAtValidation")
    said = re.search(
        r"stopped by RuntimeError after 2 steps; .* saved in (\S+) \(resume: --ckpt_path", capsys.readouterr().err
    )
    assert said, "no line names the saved state"
    saved = tmp_path / said[1]
    assert saved.parent.name == "checkpoints" and not list(saved.parent.glob("last.ckpt"))  # the only file
    checkpoint = torch.load(saved, weights_only=True)
    assert checkpoint["global_step"] == 2
    assert CharRNN.load_from_checkpoint(saved).hparams.hidden_size == 16
    assert zoo_here("fit", *args, "--ckpt_path", str(saved)) == (0, "")  # resumes, and ends its 4 steps
    last = torch.load(only(tmp_path.glob("checkpoints/last.ckpt")), weights_only=True)
    assert last["global_step"] == 4


def test_a_sample_longer_than_a_windowless_models_context_is_shortened_to_fit():
    """A TransformerLM without a window (a checkpoint from before windows) has a fixed context."""
    from zoo import TransformerLM

    model = TransformerLM(vocab_size=5, vocab="\nabcd", d_model=8, heads=2, layers=1, ffn_dim=16, max_positions=32)
    samples = SampleTextCallback(prompts=("ab\n",), length=200)
    with pytest.warns(UserWarning, match=r"do not fit the model's context of 32; sampling 29 characters"):
        samples.on_validation_start(None, model)
    assert samples.length == 29 and len(model.generate_text("ab\n", samples.length, strategy="sample")) == 29
