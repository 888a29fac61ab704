"""Stateful training learns what lies further back than seq_len; stateless training cannot.

The corpus (datamodules.long_dependency) asks for a key seen up to 3*seq_len characters
earlier. Each model is evaluated the way it was trained and the way it generates: one
stream at batch size 1, the state carried (stateful) or reset every seq_len (stateless).
"""

import lightning as L
import pytest

from callbacks import HiddenStateCallback
from datamodules import CharDataModule
from datamodules.long_dependency import KEYS, long_dependency_text
from tests.conftest import SEED
from zoo import CharRNN
from zoo.tasks.long_dependency_recall import recall_accuracy

SEQ_LEN = 10


def train(corpus, data_mode: str) -> CharRNN:
    L.seed_everything(SEED)
    dm = CharDataModule(str(corpus), mode=data_mode, seq_len=SEQ_LEN, batch_size=32)
    model = CharRNN(dm.vocab_size, dm.vocab, hidden_size=64, num_layers=1, learning_rate=1e-2)
    callback = HiddenStateCallback("preserve" if data_mode == "stateful" else "reset")
    trainer = L.Trainer(
        max_epochs=3, callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, dm)
    return model.eval()


@pytest.mark.trains
def test_stateful_training_remembers_past_seq_len_and_stateless_stays_at_chance(tmp_path):
    corpus = tmp_path / "long_dependency.txt"
    corpus.write_text(long_dependency_text(120_000, max_gap=3 * SEQ_LEN, seed=0))
    held_out = long_dependency_text(20_000, max_gap=3 * SEQ_LEN, seed=1)
    chance = 1 / len(KEYS)

    stateful = recall_accuracy(train(corpus, "stateful"), held_out, SEQ_LEN, carry_state=True)
    stateless = recall_accuracy(train(corpus, "stateless"), held_out, SEQ_LEN, carry_state=False)

    assert stateful > 0.9, f"stateful accuracy {stateful:.3f}"
    assert stateless < chance + 0.1, f"stateless accuracy {stateless:.3f}, chance {chance}"
