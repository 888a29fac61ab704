"""`zoo fit --ckpt_path` continues only what it can: the same model class on the same vocabulary. Anything
else is refused before training starts, so no checkpoint, W&B run or config file of the user's changes."""

from pathlib import Path

import pytest

from tests.conftest import REPO, only, save_checkpoint, shipped_config_data, zoo_here

STATEFUL = str(REPO / "configs" / "char_rnn" / "shakespeare_stateful.yaml")
TINY = [
    "--model.init_args.hidden_size",
    "8",
    "--model.init_args.num_layers",
    "1",
    "--model.init_args.dropout",
    "0",
    "--data.init_args.seq_len",
    "8",
    "--data.init_args.batch_size",
    "4",
    "--trainer.limit_val_batches",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
]


@pytest.fixture
def trained(tmp_path, small_corpus, monkeypatch, capsys):
    """A 2-step stateful char-RNN run without a logger (its last.ckpt, in tmp_path/checkpoints)."""
    monkeypatch.chdir(tmp_path)
    code, message = zoo_here(
        "fit",
        "--config",
        STATEFUL,
        "--data.init_args.source",
        str(small_corpus),
        *TINY,
        "--trainer.max_steps",
        "2",
        "--trainer.logger",
        "false",
    )
    assert code == 0, message
    capsys.readouterr()
    return tmp_path / "checkpoints" / "last.ckpt"


def refuse(capsys, *args) -> str:
    code, message = zoo_here("fit", "--config", STATEFUL, *TINY, "--trainer.max_steps", "4", *args)
    assert code != 0 and message.startswith("zoo fit: error: ") and "\n" not in message, message
    assert "Traceback" not in capsys.readouterr().err
    return message


def test_another_vocabulary_of_the_same_size_is_refused_and_the_checkpoint_kept(trained, small_corpus, capsys):
    text = small_corpus.read_text()
    assert "z" in text and "#" not in text
    other = small_corpus.with_name("other.txt")
    other.write_text(text.replace("z", "#"))  # the same number of characters, one of them different
    before = trained.read_bytes()
    message = refuse(
        capsys, "--data.init_args.source", str(other), "--trainer.logger", "false", "--ckpt_path", str(trained)
    )
    assert "trained on other data: its vocab differs" in message and "new here: '#', missing here: 'z'" in message
    assert trained.read_bytes() == before and [p.name for p in trained.parent.iterdir()] == ["last.ckpt"]


def test_another_model_class_is_refused_before_a_wandb_run_starts(trained, small_corpus, translator, tmp_path, capsys):
    transformer = save_checkpoint(translator, tmp_path / "transformer.ckpt")
    message = refuse(
        capsys,
        "--data.init_args.source",
        str(small_corpus),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        "--ckpt_path",
        str(transformer),
    )
    assert "holds a zoo.Transformer, not a zoo.CharRNN" in message
    assert not (tmp_path / "runs").exists()  # no W&B run was started (let alone continued)


def test_a_damaged_checkpoint_is_refused_in_one_line(trained, small_corpus, capsys):
    truncated = trained.with_name("truncated.ckpt")
    truncated.write_bytes(trained.read_bytes()[:3000])
    message = refuse(
        capsys, "--data.init_args.source", str(small_corpus), "--trainer.logger", "false", "--ckpt_path", str(truncated)
    )
    assert f"cannot read checkpoint {truncated}" in message


def test_a_run_without_logger_never_overwrites_a_users_file(trained, small_corpus, tmp_path, capsys):
    # The fixture's run wrote lightning_config.yaml into the working folder; a user's own file of that name stays.
    (tmp_path / "lightning_config.yaml").write_text("my notes\n")
    code, message = zoo_here(
        "fit",
        "--config",
        STATEFUL,
        "--data.init_args.source",
        str(small_corpus),
        *TINY,
        "--trainer.max_steps",
        "4",
        "--trainer.logger",
        "false",
        "--ckpt_path",
        str(trained),
    )
    assert code == 0, message
    assert (tmp_path / "lightning_config.yaml").read_text() == "my notes\n"
    assert "max_steps: 4" in (tmp_path / "lightning_config-1.yaml").read_text()


@pytest.mark.parametrize("config", sorted(str(p.relative_to(REPO)) for p in REPO.glob("configs/*/*.yaml")))
def test_every_shipped_config_trains_with_logging_off(
    config, small_corpus, toy_folder, translator_checkpoint, tmp_path, monkeypatch, capsys
):
    """The README says `--trainer.logger false` turns logging off: it must work with every config."""
    monkeypatch.chdir(tmp_path)
    _, data = shipped_config_data(REPO / config, toy_folder, small_corpus, translator_checkpoint, tmp_path)
    code, message = zoo_here(
        "fit",
        "--config",
        str(REPO / config),
        *data,
        "--trainer.logger",
        "false",
        "--trainer.max_steps",
        "2",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
    )
    assert code == 0, message
    assert only(Path(tmp_path).glob("**/last.ckpt")).is_file()
