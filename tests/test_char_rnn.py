"""CharRNN: shapes, weight tying, generation, and checkpoints that rebuild the model alone."""

import lightning as L
import pytest
import torch

from callbacks import HiddenStateCallback
from datamodules import CharDataModule
from zoo import CharRNN

VOCAB = "\n abcdefgh"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_and_incremental_steps_agree(cell):
    torch.manual_seed(0)
    model = CharRNN(len(VOCAB), VOCAB, cell=cell, hidden_size=16, num_layers=2).eval()
    tokens = torch.randint(len(VOCAB), (3, 7))
    logits, _ = model(tokens)  # (3, 7, V)
    state = model.init_state(None, None, 3)
    for t in range(7):
        log_probs, state = model.step(tokens[:, t], state)
        torch.testing.assert_close(log_probs, torch.log_softmax(logits[:, t], -1))


def test_tied_weights_share_one_matrix_and_bad_tying_is_explained():
    model = CharRNN(len(VOCAB), VOCAB, hidden_size=16, tie_embeddings=True)
    assert model.output.weight is model.embedding.weight
    with pytest.raises(ValueError, match="embedding_dim"):
        CharRNN(len(VOCAB), VOCAB, hidden_size=16, embedding_dim=8, tie_embeddings=True)


def test_generation_options_and_bad_input():
    torch.manual_seed(0)
    model = CharRNN(len(VOCAB), VOCAB, hidden_size=16, num_layers=1)
    a = model.generate_text("ab", 50, strategy="sample", temperature=0.7, seed=3)
    assert len(a) == 50 and set(a) <= set(VOCAB)
    assert model.generate_text("ab", 50, strategy="sample", temperature=0.7, seed=3) == a  # seeded sampling repeats
    assert model.generate_text("ab", 50, strategy="sample", temperature=0.7, seed=4) != a  # another seed: other text
    greedy = model.generate_text("ab", 20, strategy="greedy")
    assert model.generate_text("ab", 20, strategy="sample", top_k=1, seed=5) == greedy  # the one allowed token
    ids = model.vocab.encode("ab" + greedy)[None]
    logits, _ = model(ids)  # greedy picks each step's most likely character
    assert torch.equal(logits[0, 1:-1].argmax(-1), ids[0, 2:])
    with pytest.raises(ValueError, match="'Z'") as error:
        model.generate_text("aZ", 5)
    assert "Fix" in str(error.value)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate_text("a", 5, temperature=0)
    with pytest.raises(ValueError, match="temperature only change.*strategy='sample'"):
        model.generate_text("a", 5, temperature=0.5)  # greedy by default: a temperature would be ignored
    with pytest.raises(ValueError, match="prompt is empty"):
        model.generate_text("", 5)


def test_checkpoint_trained_at_batch_64_generates_at_batch_1_without_datamodule(small_corpus, tmp_path):
    L.seed_everything(0)
    dm = CharDataModule(str(small_corpus), mode="stateful", seq_len=8, batch_size=64)
    model = CharRNN(dm.vocab_size, dm.vocab, hidden_size=16, num_layers=1)
    trainer = L.Trainer(
        max_steps=5,
        callbacks=[HiddenStateCallback("preserve")],
        logger=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        limit_val_batches=1,
    )
    trainer.fit(model, dm)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = CharRNN.load_from_checkpoint(path).eval()
    assert restored.vocab.chars == dm.vocab
    text = restored.generate_text("ROMEO:", 40, strategy="greedy")
    assert text == model.generate_text("ROMEO:", 40, strategy="greedy")
