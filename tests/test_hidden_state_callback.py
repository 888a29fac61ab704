"""HiddenStateCallback under a real Trainer: what state each training and validation batch starts from."""

import lightning as L
import pytest
import torch

from callbacks import HiddenStateCallback
from datamodules import CharDataModule
from zoo import CharRNN


class StateProbe(CharRNN):
    """Records, for every batch, the state it started from and the state it ended with."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_of_states = []
        self.gradient_norms = {"accumulated": [], "stepped": []}  # per optimizer step: before and after clipping

    def on_before_optimizer_step(self, optimizer) -> None:  # the accumulated gradients, before clipping
        self.gradient_norms["accumulated"].append(self._gradient_norm())

    def configure_optimizers(self):
        optimizer = super().configure_optimizers()
        # After the step the gradients it used are still there (Lightning runs the closure inside step()).
        optimizer.register_step_post_hook(lambda *_: self.gradient_norms["stepped"].append(self._gradient_norm()))
        return optimizer

    def _gradient_norm(self) -> float:
        return float(
            torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.parameters() if p.grad is not None]))
        )

    def _loss(self, batch):
        start = self.hidden_state
        loss = super()._loss(batch)
        self.log_of_states.append(
            {
                "stage": "train" if self.training else "val",
                "epoch": self.current_epoch,
                "start": None if start is None else {"h": start.h.clone(), "c": start.c.clone()},
                "start_has_graph": start is not None and any(v.grad_fn is not None for v in (start.h, start.c)),
                "end": {"h": self.hidden_state.h.detach().clone(), "c": self.hidden_state.c.detach().clone()},
            }
        )
        return loss


def fit(corpus, callback_mode, data_mode="stateful", probe: list | None = None, **trainer_kwargs):
    L.seed_everything(0)
    dm = CharDataModule(str(corpus), mode=data_mode, seq_len=16, batch_size=4)
    model = StateProbe(dm.vocab_size, dm.vocab, hidden_size=16, num_layers=1)
    options = dict(max_epochs=2, limit_train_batches=6, limit_val_batches=2, num_sanity_val_steps=0)
    trainer = L.Trainer(
        **{**options, **trainer_kwargs},
        callbacks=[HiddenStateCallback(callback_mode)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, dm)
    if probe is not None:
        probe.append(model)
    return model.log_of_states


def train_entries(log):
    return [entry for entry in log if entry["stage"] == "train"]


def test_preserve_carries_the_detached_state_and_resets_each_epoch(small_corpus):
    log = train_entries(fit(small_corpus, "preserve"))
    assert len(log) == 12
    for previous, entry in zip(log, log[1:]):
        if entry["epoch"] != previous["epoch"]:
            assert entry["start"] is None  # reset at epoch start
        else:
            assert not entry["start_has_graph"]  # detached: gradients stop at the batch boundary
            for key in ("h", "c"):
                assert torch.equal(entry["start"][key], previous["end"][key])
    assert log[0]["start"] is None


def test_reset_starts_every_batch_from_zero(small_corpus):
    log = fit(small_corpus, "reset", data_mode="stateless")
    assert [entry["stage"] for entry in log].count("train") == 12 and len(log) == 12 + 2 * 2  # and validation
    assert all(entry["start"] is None for entry in log)


def test_validation_runs_on_its_own_state_and_leaves_training_state_untouched(small_corpus):
    log = fit(small_corpus, "preserve", max_epochs=1, val_check_interval=3)
    stages = [entry["stage"] for entry in log]
    assert stages == ["train"] * 3 + ["val"] * 2 + ["train"] * 3 + ["val"] * 2
    first_val, second_val = log[3], log[4]
    assert first_val["start"] is None  # validation starts from zero ...
    assert torch.equal(second_val["start"]["h"], first_val["end"]["h"])  # ... and carries within itself
    resumed = log[5]
    assert torch.equal(resumed["start"]["h"], log[2]["end"]["h"])  # training continues where it stopped


def test_works_with_gradient_accumulation_and_clipping(small_corpus):
    probe = []
    log = train_entries(fit(small_corpus, "preserve", probe=probe, accumulate_grad_batches=3, gradient_clip_val=0.1))
    assert len(log) == 12
    assert all(not entry["start_has_graph"] for entry in log)
    assert torch.equal(log[4]["start"]["c"], log[3]["end"]["c"])  # carried across a batch without a step
    norms = probe[0].gradient_norms
    assert len(norms["stepped"]) == 12 // 3  # one optimizer step per 3 batches (per epoch: 6 batches, 2 steps)
    assert min(norms["accumulated"]) > 0.1  # so clipping had work to do ...
    assert all(norm <= 0.1 + 1e-5 for norm in norms["stepped"])  # ... and every step saw clipped gradients


def test_a_module_trained_without_the_callback_gets_a_clear_error(small_corpus):
    L.seed_everything(0)
    dm = CharDataModule(str(small_corpus), mode="stateful", seq_len=16, batch_size=4)
    model = CharRNN(dm.vocab_size, dm.vocab, hidden_size=8, num_layers=1)
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(RuntimeError, match="HiddenStateCallback"):
        trainer.fit(model, dm)


def test_a_module_without_the_attribute_is_told_what_to_add(small_corpus):
    class NoState(L.LightningModule):
        pass

    callback = HiddenStateCallback("preserve")
    with pytest.raises(AttributeError, match="hidden_state"):
        callback.on_fit_start(L.Trainer(logger=False), NoState())
