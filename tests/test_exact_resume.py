"""A run killed mid-epoch and resumed from its checkpoint ends with the weights of an uninterrupted run.

Real `zoo fit` subprocesses at tiny sizes, with dropout on (so the random state matters):
the stateful char-RNN (stream position and carried hidden state restored), the stateless
one (the epoch's shuffle, offsets and position restored) and the Transformer on bucketed
translation batches (sampler position restored). Each run spans
several epochs, and the kill comes in the middle of one.
"""

import time
from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from lightning import LightningDataModule
from lightning.pytorch.callbacks import Callback

from tests.conftest import run_zoo, start_zoo
from zoo.hub.checkpoints import read_checkpoint

STEPS = 14


def run_config(folder, model: dict, data: dict, callbacks: list) -> str:
    config = {
        "seed_everything": 7,
        "trainer": {
            "max_steps": STEPS,
            "logger": False,
            "enable_progress_bar": False,
            "limit_val_batches": 2,
            "callbacks": [
                *callbacks,
                {"class_path": "callbacks.RandomStateCheckpoint"},
                {
                    "class_path": "callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": str(folder),
                        "filename": "{step}",
                        "every_n_train_steps": 1,
                        "save_top_k": -1,
                        "save_last": True,
                    },
                },
            ],
        },
        "model": model,
        "data": data,
    }
    folder.mkdir(parents=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def fit(config: str, *args: str, cwd) -> None:
    done = run_zoo("fit", "--config", config, *args, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]


class PauseAtStep(Callback):
    """Holds the run still when ``step`` optimizer steps are done (their checkpoint written), so that the test
    kills it exactly there: mid-epoch, with more to do, never after it ended."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            time.sleep(3600)


def fit_and_kill(config: str, step: int, checkpoint, cwd) -> None:
    """Start a run that pauses once ``step`` steps are done, and SIGKILL it there."""
    paused = yaml.safe_load(open(config))
    paused["trainer"]["callbacks"].append({"class_path": f"{__name__}.PauseAtStep", "init_args": {"step": step}})
    paused_config = Path(config).with_name("paused.yaml")
    paused_config.write_text(yaml.safe_dump(paused))
    process = start_zoo("fit", "--config", str(paused_config), cwd=cwd)
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # (polling for a file: the child has no other way to say it is there)
    assert checkpoint.exists() and process.poll() is None, f"the run ended (rc {process.poll()}) before step {step}"
    process.kill()
    process.wait()


def assert_same_weights(a, b) -> None:
    ours, theirs = read_checkpoint(a)["state_dict"], read_checkpoint(b)["state_dict"]
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), f"{name} differs after resuming"


def batches_per_epoch(config: str) -> int:
    """Training batches per epoch of the DataModule a config describes."""
    parser = ArgumentParser()
    parser.add_subclass_arguments(LightningDataModule, "data")
    data = parser.instantiate_classes(parser.parse_object({"data": yaml.safe_load(open(config))["data"]})).data
    data.setup("fit")
    return len(data.train_dataloader())


def check_resume(tmp_path, make_config, resume_step: int, batches: int, mid_epoch: bool) -> None:
    """``batches`` per epoch, STEPS spanning several epochs, and the resume point mid-epoch or at an epoch's
    last batch: what the test says it covers, checked."""
    straight = make_config(tmp_path / "straight")
    assert batches_per_epoch(straight) == batches and STEPS >= 2 * batches
    assert (resume_step % batches != 0) == mid_epoch
    fit(straight, cwd=tmp_path)
    killed_folder = tmp_path / "killed"
    killed = make_config(killed_folder)
    resume_from = killed_folder / f"step={resume_step}.ckpt"
    fit_and_kill(killed, resume_step, resume_from, cwd=tmp_path)
    for later in killed_folder.glob("*.ckpt"):  # what the killed run wrote after the resume point goes
        if later != resume_from:
            later.unlink()
    fit(killed, "--ckpt_path", str(resume_from), cwd=tmp_path)
    assert_same_weights(tmp_path / "straight" / "last.ckpt", killed_folder / "last.ckpt")
    assert_same_weights(tmp_path / "straight" / f"step={STEPS}.ckpt", killed_folder / f"step={STEPS}.ckpt")


# 20,000 training characters in 190 streams of 16-character windows: 6 batches per epoch.
# Resume mid-epoch 1, and from a checkpoint written at the last batch of epoch 0.
@pytest.mark.parametrize("resume_step, mid_epoch", [(8, True), pytest.param(6, False, marks=pytest.mark.slow)])
def test_stateful_char_rnn_resumes_exactly(tmp_path, small_corpus, resume_step, mid_epoch):
    def make_config(folder):
        model = {"class_path": "zoo.CharRNN", "init_args": {"hidden_size": 24, "num_layers": 2, "dropout": 0.3}}
        data = {
            "class_path": "datamodules.CharDataModule",
            "init_args": {
                "source": str(small_corpus),
                "mode": "stateful",
                "seq_len": 16,
                "batch_size": 190,
                "val_fraction": 0.5,
            },
        }
        return run_config(
            folder, model, data, [{"class_path": "callbacks.HiddenStateCallback", "init_args": {"mode": "preserve"}}]
        )

    check_resume(tmp_path, make_config, resume_step, batches=6, mid_epoch=mid_epoch)


@pytest.mark.slow  # ~18 s; the stateful char-RNN and the bucketed Transformer resume exactly in the default run
def test_stateless_char_rnn_resumes_exactly(tmp_path, small_corpus):
    # 20,000 training characters in 1,249 windows of 16, batches of 200: 7 batches per epoch; resume mid-epoch 1.
    def make_config(folder):
        model = {"class_path": "zoo.CharRNN", "init_args": {"hidden_size": 24, "num_layers": 2, "dropout": 0.3}}
        data = {
            "class_path": "datamodules.CharDataModule",
            "init_args": {
                "source": str(small_corpus),
                "mode": "stateless",
                "seq_len": 16,
                "batch_size": 200,
                "val_fraction": 0.5,
            },
        }
        return run_config(
            folder, model, data, [{"class_path": "callbacks.HiddenStateCallback", "init_args": {"mode": "reset"}}]
        )

    check_resume(tmp_path, make_config, resume_step=10, batches=7, mid_epoch=True)


def test_bucketed_transformer_run_resumes_exactly(tmp_path, toy_folder):
    def make_config(folder):
        model = {
            "class_path": "zoo.Transformer",
            "init_args": {
                "d_model": 16,
                "heads": 2,
                "encoder_layers": 1,
                "decoder_layers": 1,
                "ffn_dim": 32,
                "dropout": 0.3,
                "warmup_steps": 4,
                "test_beam_size": 1,
            },
        }
        data = {
            "class_path": "datamodules.TranslationDataModule",
            "init_args": {"source": str(toy_folder), "pair": "en-xx", "vocab_size": 60, "max_tokens": 3000},
        }
        return run_config(folder, model, data, [])

    check_resume(tmp_path, make_config, resume_step=9, batches=6, mid_epoch=True)


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch, small_corpus):
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    from zoo.cli import ZooCLI
    from zoo.hub.atomic_checkpoint_io import AtomicCheckpointIO

    target = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, target)

    def dies_mid_write(self, checkpoint, path, storage_options=None):  # Lightning's writer, killed halfway
        with open(path, "wb") as file:
            file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, target)
    monkeypatch.undo()
    assert read_checkpoint(target) == {"step": 1}  # the previous checkpoint is intact
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # and no partial file stays

    cli = ZooCLI(
        args=[
            "--model",
            "zoo.CharRNN",
            "--data",
            "datamodules.CharDataModule",
            "--data.source",
            str(small_corpus),
            "--trainer.logger",
            "false",
        ],
        run=False,
    )
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)  # `zoo fit` uses it by default
