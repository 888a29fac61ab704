"""TimeBudgetDecay: the learning rate reaches zero when the time budget ends, over any model's own schedule."""

import time
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, Timer
from lightning.pytorch.trainer.states import RunningStage

from callbacks import HiddenStateCallback, TimeBudgetDecay
from datamodules import CharDataModule
from zoo import CharRNN


def at(elapsed: float, budget: float = 100.0) -> SimpleNamespace:
    """A trainer's callbacks and optimizers as the callback reads them, its Timer ``elapsed`` seconds in."""
    timer = Timer(duration={"seconds": budget})
    timer._start_time[RunningStage.TRAINING] = time.monotonic() - elapsed
    return SimpleNamespace(callbacks=[timer])


def lr_after(callback, trainer, optimizer) -> float:
    trainer.optimizers = [optimizer]
    callback.on_train_batch_start(trainer, None, None, 0)
    return optimizer.param_groups[0]["lr"]


def test_constant_rate_holds_then_falls_linearly_to_zero_without_compounding():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    callback = TimeBudgetDecay(decay_fraction=0.4)
    lrs = [lr_after(callback, at(elapsed), optimizer) for elapsed in (0, 50, 60, 70, 70, 80, 90, 100)]
    assert lrs == pytest.approx([1, 1, 1, 0.75, 0.75, 0.5, 0.25, 0], abs=1e-3)  # 70 twice: no compounding


def test_a_scheduler_rate_is_scaled_afresh_at_every_step():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + step))  # 1, 1/2, 1/3, ...
    callback = TimeBudgetDecay(decay_fraction=0.5)
    seen = []
    for step, elapsed in enumerate((0, 60, 75, 90)):
        seen.append(lr_after(callback, at(elapsed), optimizer))
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([1, 1 / 2 * 0.8, 1 / 3 * 0.5, 1 / 4 * 0.2], abs=1e-3)


class RecordRates(Callback):
    def __init__(self):
        self.rates, self.starts, self.end = [], [], None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])
        self.starts.append(time.monotonic())

    def on_train_end(self, trainer, pl_module):
        self.end = time.monotonic()


def fit(corpus, **trainer_options):
    dm = CharDataModule(str(corpus), mode="stateless", seq_len=16, batch_size=4)
    model = CharRNN(dm.vocab_size, dm.vocab, hidden_size=16, num_layers=1, learning_rate=0.01)
    record = RecordRates()
    trainer = L.Trainer(
        callbacks=[TimeBudgetDecay(decay_fraction=0.5), record, HiddenStateCallback("reset")],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        **trainer_options,
    )
    trainer.fit(model, dm)
    return record


def test_a_real_run_ends_annealed_when_its_time_is_up(small_corpus):
    record = fit(small_corpus, max_time={"seconds": 3})
    rates = record.rates
    assert rates[0] == 0.01 and min(rates) < 0.01  # it decayed, however many steps a loaded CPU managed
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # never rises
    # The last step started with at most its own duration left of the 3 s (the Timer stops the run after it),
    # so its rate is at most that share of the 1.5 s decay phase (plus the gap between two clocks' starts).
    last_step = record.end - record.starts[-1]
    assert rates[-1] <= 0.01 * (last_step + 0.1) / 1.5


def test_without_a_time_budget_it_says_what_to_set(small_corpus):
    with pytest.raises(ValueError, match="Fix: set trainer.max_time"):
        fit(small_corpus, max_steps=3)  # (refused at setup, before the first step)


def test_every_timed_config_saves_its_last_weights_when_the_time_runs_out():
    """Lightning validates at a max_time stop only in an epoch that validates, and the checkpoint callback saves
    only after validation: a config that validates every n > 1 epochs loses up to n epochs of its decay."""
    from tests.conftest import shipped_trainer_configs

    for config, trainer in shipped_trainer_configs():
        saves = any("ModelCheckpoint" in c.get("class_path", "") for c in trainer.get("callbacks", []))
        if "max_time" in trainer and saves:
            assert trainer.get("check_val_every_n_epoch", 1) == 1, f"{config}: validate every epoch"
