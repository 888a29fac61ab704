"""Fine-tuning from Python (issue 26, first part): a trained model's own tokenizers or vocabulary go into the
DataModule, and Lightning's Trainer continues from its weights on the new text."""

import lightning as L
import torch

from callbacks import HiddenStateCallback
from datamodules import CharDataModule, TranslationDataModule
from zoo import CharRNN


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
