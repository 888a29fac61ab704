"""Fine-tuning from Python (issue 26, first part): a trained model's own tokenizers or vocabulary go into the
DataModule, and Lightning's Trainer continues from its weights on the new text."""

import lightning as L
import pytest
import torch

from callbacks import FreezeParts, HiddenStateCallback
from datamodules import CharDataModule, TranslationDataModule
from tests.conftest import SEED
from zoo import CharRNN, CheckpointError
from zoo.tasks.fine_tuning import architecture, start_from


def fit_briefly(model, data, callbacks=()) -> None:
    trainer = L.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=1,
        callbacks=list(callbacks),
    )
    trainer.fit(model, data)


def test_a_translator_fine_tunes_on_new_pairs_with_its_own_tokenizers(translator, toy_folder):
    before = {k: v.clone() for k, v in translator.state_dict().items()}
    tokenizer_json = translator.hparams.src_tokenizer
    data = TranslationDataModule(str(toy_folder), pair="en-xx", max_tokens=200, tokenizers=translator.tokenizers)
    fit_briefly(translator, data)
    assert translator.hparams.src_tokenizer == tokenizer_json and "tokenizers" not in data.written
    changed = [k for k, v in translator.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # trained on, from the weights it had
    assert translator.translate(["a man runs"])  # and still translates, with the same tokenizers


def test_a_char_model_fine_tunes_on_new_text_in_its_own_vocabulary(tmp_path):
    torch.manual_seed(0)
    model = CharRNN(len("abc \n"), "abc \n", hidden_size=8, num_layers=1)
    before = model.output.weight.detach().clone()
    text = tmp_path / "new.txt"
    text.write_text("abba cab\n" * 200)
    data = CharDataModule(str(text), seq_len=8, batch_size=4, vocab=model.vocab)
    fit_briefly(model, data, [HiddenStateCallback(mode="reset")])
    assert not torch.equal(model.output.weight, before) and model.vocab.chars == "abc \n"
    assert set(model.generate_text("ab", 20)) <= set("abc \n")


@pytest.mark.parametrize("tie_embeddings", [False, True])
def test_an_extended_vocabulary_keeps_every_known_row_and_the_known_characters_predictions(tie_embeddings):
    torch.manual_seed(SEED)
    parent = CharRNN(len("abc \n"), "abc \n", hidden_size=8, num_layers=2, tie_embeddings=tie_embeddings).eval()
    vocab = "abc \nxé"  # CharDataModule(extend_vocab=True) appends the new characters
    model = start_from(CharRNN(len(vocab), vocab, **architecture(parent)).eval(), parent)
    assert torch.equal(model.embedding.weight[:5], parent.embedding.weight)
    assert torch.equal(model.output.weight[:5], parent.output.weight)
    assert torch.allclose(model.embedding.weight[5:], parent.embedding.weight.mean(0).expand(2, -1))
    assert (model.output.weight.data_ptr() == model.embedding.weight.data_ptr()) == tie_embeddings
    # The known characters' logits are the parent's, so their relative probabilities are too.
    text = parent.vocab.encode("abba cab\nab").unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(model.language_model_logits(text)[..., :5], parent.language_model_logits(text))
    with pytest.raises(CheckpointError, match="lacks 1 of the parent's characters"):
        start_from(CharRNN(4, "abc ", **architecture(parent)), parent)


def test_extend_vocab_appends_only_the_new_training_characters(tmp_path):
    text = tmp_path / "new.txt"
    text.write_text("abba cxb é\n" * 200, encoding="utf-8")
    with pytest.raises(ValueError, match=r"'x' \(180\).*'é' \(180\)"):  # 90% of 200 lines train
        CharDataModule(str(text), vocab="abc \n").vocab  # noqa: B018
    assert CharDataModule(str(text), vocab="abc \n", extend_vocab=True).vocab == "abc \nxé"
    with pytest.raises(ValueError, match="extend_vocab needs the vocab"):
        CharDataModule(str(text), extend_vocab=True)


def test_frozen_parts_keep_their_weights_and_the_rest_trains(tmp_path):
    torch.manual_seed(SEED)
    model = CharRNN(len("abc \n"), "abc \n", hidden_size=8, num_layers=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    text = tmp_path / "new.txt"
    text.write_text("abba cab\n" * 200)
    data = CharDataModule(str(text), seq_len=8, batch_size=4, vocab=model.vocab)
    fit_briefly(model, data, [HiddenStateCallback(mode="reset"), FreezeParts(["embeddings", "layers.0"])])
    unchanged = {k for k, v in model.state_dict().items() if torch.equal(v, before[k])}
    assert unchanged == {"embedding.weight", *(f"rnn.{w}_l0" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))}
    with pytest.raises(
        ValueError, match="no part 'encoder'. Fix: freeze some of: embeddings, layers.0, layers.1, output"
    ):
        fit_briefly(CharRNN(5, "abc \n", hidden_size=8, num_layers=2), data, [FreezeParts(["encoder"])])


def test_mixed_fine_tuning_adds_a_fixed_share_of_the_original_pairs(translator, toy_folder, tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    for split, n in (("train", 70), ("val", 5), ("test", 5)):
        (new / f"{split}.tsv").write_text("".join(f"hello {i}\tbonjour {i}\n" for i in range(n)))

    def mixed(**options):
        data = TranslationDataModule(
            str(new), "en-xx", batch_size=8, max_tokens=None, tokenizers=translator.tokenizers, **options
        )
        data.setup("fit")
        return data

    data = mixed(mix_source=str(toy_folder), mix_share=0.3)
    train = data.datasets["train"]["src"]
    original = set(TranslationDataModule(str(toy_folder), "en-xx").texts["train"].src)
    drawn = [s for s in train if not s.startswith("hello")]
    assert len(train) == 100 and len(drawn) == 30 and set(drawn) <= original  # 30% of the training pairs
    assert train == mixed(mix_source=str(toy_folder), mix_share=0.3).datasets["train"]["src"]  # reproducible
    assert [s for s in data.datasets["val"]["src"]] == [f"hello {i}" for i in range(5)]  # validation: the new data
    with pytest.raises(ValueError, match="mix_source is the source itself"):
        mixed(mix_source=str(new))
    with pytest.raises(ValueError, match=r"mix_share 0.9 needs 630 pairs .* Fix: a mix_share of at most 0.85"):
        mixed(mix_source=str(toy_folder), mix_share=0.9)
