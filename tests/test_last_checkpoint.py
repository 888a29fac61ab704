"""callbacks.ModelCheckpoint: last.ckpt holds the weights a run ended with, not the best ones (Lightning 2.6's)."""

import lightning as L
import pytest
import torch

from callbacks import HiddenStateCallback, ModelCheckpoint
from datamodules import CharDataModule
from zoo import CharRNN


def fit(corpus, folder, checkpoint: ModelCheckpoint, ckpt_path=None, **trainer_options) -> L.Trainer:
    dm = CharDataModule(str(corpus), mode="stateless", seq_len=16, batch_size=4)
    model = CharRNN(dm.vocab_size, dm.vocab, hidden_size=16, num_layers=1, learning_rate=0.01)
    trainer = L.Trainer(
        callbacks=[checkpoint, HiddenStateCallback("reset")],
        default_root_dir=folder,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_train_batches=3,
        limit_val_batches=1,
        **trainer_options,
    )
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    return trainer


def saved_step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


def never_better_after_the_first(folder) -> ModelCheckpoint:
    # "step" is always a monitor candidate and only grows: with mode min, the first validation stays the best
    return ModelCheckpoint(dirpath=folder / "checkpoints", monitor="step", mode="min", save_last=True)


def test_last_checkpoint_holds_the_final_weights_when_the_last_validation_is_not_the_best(small_corpus, tmp_path):
    checkpoint = never_better_after_the_first(tmp_path)
    trainer = fit(small_corpus, tmp_path, checkpoint, max_epochs=3)
    assert trainer.global_step == 9
    assert saved_step(checkpoint.best_model_path) == 3  # the best stays the first epoch's
    assert saved_step(tmp_path / "checkpoints" / "last.ckpt") == 9
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch=0-step=3.ckpt", "last.ckpt"]


def test_a_stop_between_validations_is_saved_and_resumes_from_there(small_corpus, tmp_path):
    checkpoint = never_better_after_the_first(tmp_path)
    fit(small_corpus, tmp_path, checkpoint, max_steps=7, check_val_every_n_epoch=2)  # stops in epoch 2 of 0..2
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert saved_step(last) == 7
    resumed = fit(small_corpus, tmp_path, never_better_after_the_first(tmp_path), ckpt_path=last, max_steps=9)
    assert resumed.global_step == 9 and saved_step(last) == 9


def test_a_linked_last_checkpoint_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match="Fix: set save_last: true"):
        ModelCheckpoint(monitor="val/loss", save_last="link")


def test_every_shipped_config_that_keeps_a_last_checkpoint_uses_this_one():
    from tests.conftest import shipped_trainer_configs

    for config, trainer in shipped_trainer_configs():
        for callback in trainer.get("callbacks", []):
            if callback.get("init_args", {}).get("save_last"):
                assert callback["class_path"] == "callbacks.ModelCheckpoint", f"{config}: {callback['class_path']}"
