"""CharDataModule: stream batching continues each row exactly, windows are random, bad corpora are refused."""

import gzip
import re

import pytest
import torch

from datamodules import CharDataModule, CorpusError
from datamodules.char_batches import StreamBatches


def test_stateful_row_i_of_batch_t_plus_1_continues_row_i_of_batch_t(small_corpus):
    dm = CharDataModule(str(small_corpus), mode="stateful", seq_len=16, batch_size=4)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) > 10
    for (x0, y0), (x1, y1) in zip(batches, batches[1:]):
        assert x0.shape == (4, 16)
        assert torch.equal(x1[:, 0], y0[:, -1])  # the next window starts where this one's target ended
        assert torch.equal(x0[:, 1:], y0[:, :-1])  # targets are inputs shifted by one
    # Each row, concatenated over batches, is one contiguous slice of the training text.
    rows = torch.cat([x for x, _ in batches], dim=1)  # (B, n*T)
    train_text = dm.char_vocab.decode(dm.train_tokens)
    for row in rows:
        assert dm.char_vocab.decode(row) in train_text


def test_stateful_streams_are_disjoint_across_ranks(small_corpus):
    tokens = torch.arange(10_000)
    ranks = [StreamBatches(tokens, batch_size=3, seq_len=20, rank=r, world_size=2) for r in range(2)]
    seen = [torch.cat([torch.cat([x, y[:, -1:]], 1) for x, y in rank]).flatten().tolist() for rank in ranks]
    assert len(ranks[0]) == len(ranks[1])
    assert not set(seen[0]) & set(seen[1])


def test_stateless_windows_are_random_each_epoch_and_validation_is_fixed(small_corpus):
    dm = CharDataModule(str(small_corpus), mode="stateless", seq_len=32, batch_size=8)
    dm.setup("fit")
    torch.manual_seed(0)
    loader = dm.train_dataloader()
    first = torch.cat([x for x, _ in loader])
    second = torch.cat([x for x, _ in loader])  # the next epoch
    assert first.shape == second.shape and not torch.equal(first, second)
    loader.sampler.set_epoch(0)  # an epoch is a function of (seed, epoch): a resumed run sees the same windows
    assert torch.equal(torch.cat([x for x, _ in loader]), first)
    val_a = torch.cat([x for x, _ in dm.val_dataloader()])
    val_b = torch.cat([x for x, _ in dm.val_dataloader()])
    assert torch.equal(val_a, val_b)


def test_vocab_comes_from_the_first_90_percent_only(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("ab" * 450 + "abZa" * 25)  # Z only in the last 10%
    dm = CharDataModule(str(path), seq_len=4, batch_size=2)
    assert dm.vocab == "ab" and dm.vocab_size == 2
    with pytest.warns(UserWarning, match="never seen in training"):
        dm.setup("fit")


def test_shakespeare_split_follows_the_literature(shared_data, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(shared_data))
    dm = CharDataModule("tinyshakespeare", mode="stateful", seq_len=100, batch_size=64)
    dm.setup("fit")
    assert dm.vocab_size == 65
    assert len(dm.train_tokens) == int(1_115_394 * 0.9)
    assert len(dm.train_tokens) + len(dm.val_tokens) == 1_115_394


def test_corpus_too_short_for_stateful_batches_names_the_numbers_and_the_fix(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("x" * 5000)
    dm = CharDataModule(str(path), mode="stateful", seq_len=100, batch_size=64)
    with pytest.raises(CorpusError) as error:
        dm.setup("fit")
    assert "64 streams" in str(error.value) and "6464" in str(error.value) and "lower batch_size" in str(error.value)


def test_a_gzip_corpus_is_read_whatever_its_name(small_corpus, tmp_path):
    packed = tmp_path / "corpus.txt"  # gzip under a .txt name, as a user may well have it
    text = small_corpus.read_text()
    packed.write_bytes(gzip.compress(text.encode()))
    dm = CharDataModule(str(packed), seq_len=50, batch_size=4)
    dm.setup("fit")
    assert dm.vocab == "".join(sorted(set(text[: int(len(text) * 0.9)])))


def test_empty_file_and_bad_options_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(CorpusError, match="empty"):
        CharDataModule(str(empty)).setup("fit")
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\n" * 25_000)
    with pytest.raises(CorpusError, match=r"blank.txt holds no visible character: its 100,000 characters are all"):
        CharDataModule(str(blank)).setup("fit")
    with pytest.raises(ValueError, match="mode"):
        CharDataModule(str(empty), mode="streaming")
    with pytest.raises(ValueError, match="val_fraction"):
        CharDataModule(str(empty), val_fraction=1.0)


def test_a_pretrained_models_vocabulary_reads_new_text_and_names_what_it_lacks(tmp_path):
    from zoo import CharRNN

    model = CharRNN(len("abc \n"), "abc \n", hidden_size=8, num_layers=1)
    text = tmp_path / "new.txt"
    text.write_text("abba cab\n" * 200)
    data = CharDataModule(str(text), seq_len=8, batch_size=4, vocab=model.vocab)
    data.setup("fit")
    assert data.vocab == "abc \n" and data.vocab_size == model.hparams.vocab_size  # the model's ids, unchanged
    new = tmp_path / "accents.txt"
    new.write_text("abc caf\u00e9 \u00e9t\u00e9\n" * 100)
    lacks = "3 character(s) the model's vocabulary lacks: 'f' (90), 't' (90), '\u00e9' (270)"  # in the 90% that trains
    with pytest.raises(CorpusError, match=re.escape(lacks)):
        CharDataModule(str(new), seq_len=8, batch_size=4, vocab="abc \n").setup("fit")
