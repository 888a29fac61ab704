"""TranslationDataModule: files and tokenizers in, padded masked batches out, with clear errors for bad corpora."""

import gzip
import json
import re

import datasets
import pytest
import torch

from datamodules import CorpusError
from datamodules.collate import collate_pairs
from datamodules.text_tokenizer import SpecialIds, decode, normalize, train_tokenizer
from datamodules.translation_datamodule import TranslationDataModule


def toy_module(folder, **kwargs):
    options = dict(pair="en-xx", tokenizer="bpe", vocab_size=100, max_tokens=200)
    return TranslationDataModule(str(folder), **{**options, **kwargs})


def test_collate_pads_to_the_longest_and_masks_exactly_the_pads():
    PAD_ID, BOS_ID, EOS_ID = 10, 11, 12  # whatever the tokenizer says
    ids = SpecialIds(pad=PAD_ID, bos=BOS_ID, eos=EOS_ID, unk=13)
    batch = collate_pairs([{"src_ids": [7, 8, 9], "tgt_ids": [5]}, {"src_ids": [7], "tgt_ids": [5, 6, 4, 9]}], ids)
    assert batch["src"].tolist() == [[7, 8, 9, EOS_ID], [7, EOS_ID, PAD_ID, PAD_ID]]
    assert batch["src_lengths"].tolist() == [4, 2]
    assert batch["src_pad_mask"].tolist() == [[False] * 4, [False, False, True, True]]
    assert batch["tgt_in"].tolist() == [[BOS_ID, 5, PAD_ID, PAD_ID, PAD_ID], [BOS_ID, 5, 6, 4, 9]]
    assert batch["tgt_out"].tolist() == [[5, EOS_ID, PAD_ID, PAD_ID, PAD_ID], [5, 6, 4, 9, EOS_ID]]
    assert batch["tgt_pad_mask"].tolist() == [[False, False, True, True, True], [False] * 5]
    # decoder input is the target shifted right by one, <bos> first
    real = ~batch["tgt_pad_mask"]
    assert torch.equal(batch["tgt_in"][:, 1:][real[:, 1:]], batch["tgt_out"][:, :-1][real[:, 1:]])


def test_local_files_become_batches_that_decode_back_to_the_text(toy_folder):
    dm = toy_module(toy_folder)
    dm.setup("fit")
    assert dm.src_vocab_size == dm.tgt_vocab_size <= 100  # joint, at most vocab_size
    batches = list(dm.val_dataloader())
    assert sum(len(b["src"]) for b in batches) == 40
    expected = {normalize(line) for line in (toy_folder / "val.xx").read_text().splitlines()}
    decoded = {decode(dm.tokenizers[1], row.tolist()) for b in batches for row in b["tgt_out"]}
    assert decoded == expected
    for b in dm.train_dataloader():
        assert b["src"].shape[0] * max(b["src"].shape[1], b["tgt_out"].shape[1]) <= 200


def test_second_setup_reuses_the_cache(toy_folder):
    first = toy_module(toy_folder)
    first.setup("fit")
    assert set(first.cache_report.values()) == {"tokenized"}
    tokenizer_file = first.cache_folder / "tokenizer-joint.json"
    stamp = tokenizer_file.stat().st_mtime_ns
    second = toy_module(toy_folder)
    second.setup("fit")
    assert set(second.cache_report.values()) == {"cached"}
    assert tokenizer_file.stat().st_mtime_ns == stamp
    assert second.datasets["train"]["src_ids"] == first.datasets["train"]["src_ids"]


def test_separate_vocabularies_and_tsv_and_hf_folder_sources(toy_folder, tmp_path):
    dm = toy_module(toy_folder, joint_vocab=False, tokenizer="word", vocab_size=50)
    src_vocab, tgt_vocab = (t.get_vocab() for t in dm.tokenizers)
    assert not any("." in token for token in src_vocab) and any("." in token for token in tgt_vocab)
    tsv, hf = tmp_path / "tsv", tmp_path / "hf"
    tsv.mkdir(), hf.mkdir()
    for split, hf_split in (("train", "train"), ("val", "validation"), ("test", "test")):
        src = (toy_folder / f"{split}.en").read_text().splitlines()
        tgt = (toy_folder / f"{split}.xx").read_text().splitlines()
        (tsv / f"{split}.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in zip(src, tgt)))
        rows = [json.dumps({"translation": {"en": s, "xx": t}}) for s, t in zip(src, tgt)]
        (hf / f"{hf_split}.jsonl").write_text("\n".join(rows) + "\n")
    reference = toy_module(toy_folder).texts
    for source in (str(tsv), f"hf:{hf}"):
        texts = TranslationDataModule(source, pair="en-xx").texts
        assert texts["val"].src == reference["val"].src and texts["test"].tgt == reference["test"].tgt


def test_multi30k_tokenizer_round_trip_and_setup(shared_data, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(shared_data))
    dm = TranslationDataModule("multi30k", pair="en-fr", vocab_size=8000)
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [29000, 1014, 1000]
    tokenizer = dm.tokenizers[1]
    for sentence in dm.texts["val"].tgt:
        assert tokenizer.decode(tokenizer.encode(sentence).ids) == normalize(sentence)
    real = padded = 0
    for batch in dm.train_dataloader():  # ~4000-token batches pad under 3% on both sides together
        real += int((~batch["src_pad_mask"]).sum() + (~batch["tgt_pad_mask"]).sum())
        padded += batch["src"].numel() + batch["tgt_out"].numel()
    assert real / padded >= 0.97
    chars = train_tokenizer("char", dm.texts["train"].src, 500)
    for sentence in dm.texts["val"].src:
        assert chars.decode(chars.encode(sentence).ids) == normalize(sentence)


def test_max_len_drops_and_counts_long_training_pairs(toy_folder):
    dm = toy_module(toy_folder, max_len=6)
    dm.setup("fit")
    assert dm.dropped_long > 0
    assert len(dm.datasets["train"]) == 400 - dm.dropped_long
    assert max(dm.datasets["train"]["src_len"]) <= 6 and len(dm.datasets["val"]) == 40  # only training is filtered


# --- bad input --------------------------------------------------------------------------


def test_files_of_different_length_give_both_counts(toy_folder):
    (toy_folder / "train.xx").write_text("one\ntwo\n")
    dm = toy_module(toy_folder)
    with pytest.raises(CorpusError, match=r"train.en has 400 lines.*train.xx has 2"):
        dm.setup("fit")
    assert not list(dm.corpus_folder.glob("*.arrow*"))  # no half-written text stays in the cache


def test_empty_lines_are_skipped_and_counted(toy_folder):
    for split in ("train", "val"):
        src = (toy_folder / f"{split}.en").read_text().splitlines()
        src[3] = src[10] = "  "
        (toy_folder / f"{split}.en").write_text("\n".join(src) + "\n")
    dm = toy_module(toy_folder)
    assert dm.texts["val"].skipped_empty == 2 and len(dm.texts["val"].src) == 38
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 398 and json.loads(dm.summary())["skipped_empty"] == {"train": 2, "val": 2}


def test_setup_streams_the_training_text_and_keeps_it_on_disk(toy_folder):
    """The training text is never read into Python lists; the datasets are memory-mapped Arrow files."""
    dm = toy_module(toy_folder, max_len=6)
    dm.setup()
    assert "train" not in dm.texts._loaded
    assert all(dm.datasets[split].cache_files for split in ("train", "val", "test"))
    again = toy_module(toy_folder, max_len=6)
    again.setup()
    assert again.cache_report == {"train": "cached", "val": "cached", "test": "cached"}
    assert len(again.datasets["train"]) == len(dm.datasets["train"])
    (toy_folder / "train.xx").write_text((toy_folder / "train.xx").read_text().replace("park", "garden"))
    edited = toy_module(toy_folder, max_len=6)
    edited.setup("fit")  # a changed file is a new corpus: nothing is served from the old cache
    assert edited.cache_report["train"] == "tokenized" and edited.cache_folder != dm.cache_folder


def test_invalid_utf8_names_file_and_line(toy_folder):
    with gzip.open(toy_folder / "test.xx.gz", "wb") as handle:
        handle.write(b"fine\nbad \xff byte\n")
    (toy_folder / "test.xx").unlink()
    with pytest.raises(CorpusError, match=r"test.xx.gz, line 2: invalid UTF-8"):
        toy_module(toy_folder).setup("test")


def test_vocab_too_small_unknown_pair_and_tight_budget(toy_folder):
    with pytest.raises(ValueError, match="smaller than the 4 special tokens plus the"):
        toy_module(toy_folder, vocab_size=10).tokenizers
    with pytest.raises(CorpusError, match="unknown language pair 'en-es'.*en-fr"):
        TranslationDataModule("multi30k", pair="en-es").setup("fit")


def test_each_fix_a_tight_budget_suggests_works(toy_folder):
    with pytest.raises(ValueError, match="max_tokens 12 is smaller than the longest kept training example") as error:
        toy_module(toy_folder, max_tokens=12).setup("fit")
    message = str(error.value)
    raised = int(re.search(r"Fix: max_tokens (\d+) or more", message)[1])
    toy_module(toy_folder, max_tokens=raised).setup("fit")
    max_len, kept = map(int, re.search(r"or max_len (\d+) \(keeps (\d+) of the", message).groups())
    shorter = toy_module(toy_folder, max_tokens=12, max_len=max_len)
    shorter.setup("fit")
    assert len(shorter.datasets["train"]) == kept >= 200
    with pytest.raises(ValueError) as error:  # a budget that fits almost nothing: only the first fix is offered
        toy_module(toy_folder, max_tokens=5).setup("fit")
    assert "max_len" not in str(error.value).split("Fix:")[1]


def test_a_fit_needs_no_test_files_and_a_test_names_the_missing_one(toy_folder):
    for path in toy_folder.glob("test.*"):
        path.unlink()
    dm = toy_module(toy_folder)
    dm.setup("fit")
    assert set(dm.datasets) == {"train", "val"} and json.loads(dm.summary())["pairs"]["val"] == 40
    with pytest.raises(CorpusError, match=r"has no test.en .*Fix: add the file"):
        dm.setup("test")


def test_blank_parallel_files_are_refused_naming_them(toy_folder):
    (toy_folder / "train.en").write_text("  \n" * 400)
    with pytest.raises(CorpusError, match=r"train.en and .*train.xx hold no pair .*all 400 lines are blank"):
        toy_module(toy_folder).setup("fit")
    (toy_folder / "val.tsv").write_text("\t\n" * 5)
    with pytest.raises(CorpusError, match=r"val.tsv hold no pair .*all 5 lines"):
        toy_module(toy_folder).texts["val"]


def test_a_gzip_file_is_read_as_gzip_whatever_its_name(toy_folder):
    for side in ("en", "xx"):
        path = toy_folder / f"train.{side}"
        path.write_bytes(gzip.compress(path.read_bytes()))
    dm = toy_module(toy_folder)
    dm.setup("fit")
    assert dm.texts["val"].src and "park" in dm.train_text["src"][0] + " ".join(dm.train_text["src"])


def test_special_ids_are_read_from_the_tokenizer_by_data_and_models_alike():
    from tokenizers import Tokenizer, models, pre_tokenizers

    from zoo import Seq2Seq, Transformer

    vocab = {"<unk>": 0, "<eos>": 1, "<bos>": 2, "<pad>": 3, "hello": 4, "world": 5}  # not the usual 0..3 order
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    ids = SpecialIds.of(tokenizer)
    assert ids == SpecialIds(pad=3, bos=2, eos=1, unk=0)
    json_ = tokenizer.to_str()
    for cls, sizes in ((Transformer, dict(d_model=8, heads=2, ffn_dim=16)), (Seq2Seq, dict(hidden_size=8))):
        model = cls(6, 6, src_tokenizer=json_, tgt_tokenizer=json_, **sizes).eval()
        assert (model.bos_id, model.eos_id, model.src_embedding.padding_idx) == (2, 1, 3)
        batch = model.source_batch(["hello world"], truncate=False)
        assert batch["src"].tolist() == [[4, 5, 1]]  # ends in the tokenizer's <eos>
        (best,) = model.generate(batch["src"], batch["src_pad_mask"], max_len=4)[0]
        assert best.tokens[-1] == 1 or len(best.tokens) == 4  # decoding stops at the tokenizer's <eos>
        assert model.detokenize(torch.tensor([4, 1, 5])) == "hello"  # and text ends there

    del vocab["<eos>"]
    with pytest.raises(ValueError, match="no <eos> token.*train_tokenizer"):
        SpecialIds.of(Tokenizer(models.WordLevel(vocab, unk_token="<unk>")))


RACER = """
import json, sys, time
from pathlib import Path
from datamodules import TranslationDataModule
start = Path(sys.argv[2])
print("ready", flush=True)
while not start.exists():  # every process reaches this line, then all go at once
    time.sleep(0.001)
dm = TranslationDataModule(sys.argv[1], pair="en-xx", vocab_size=60, max_tokens=200)
sizes = (dm.src_vocab_size, dm.tgt_vocab_size)  # what the CLI's links read, before any Trainer
dm.prepare_data()
dm.setup("fit")
print(json.dumps({"written": dm.written, "sizes": sizes, "pairs": len(dm.datasets["train"])}))
"""


def test_processes_started_together_write_the_cache_once_and_all_read_it(toy_folder, tmp_path):
    """As torchrun starts them: several processes build the same DataModule on an empty cache at once."""
    import subprocess
    import sys

    from tests.conftest import REPO, readline_within

    start = tmp_path / "go"
    command = [sys.executable, "-c", RACER, str(toy_folder), str(start)]
    racers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO) for _ in range(3)]
    for racer in racers:
        assert readline_within(racer.stdout, 120, "a racer ready at the start line") == "ready\n"
    start.touch()
    reports = [json.loads(racer.communicate(timeout=300)[0]) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    written = [item for report in reports for item in report["written"]]
    assert sorted(written) == sorted(["train text", "tokenizers", "train tokens", "val tokens", "test tokens"])  # once
    assert len({(tuple(r["sizes"]), r["pairs"]) for r in reports}) == 1  # and all read the same


def test_a_pretrained_models_tokenizers_tokenize_new_data_and_none_is_trained(toy_folder, translator, tmp_path, caplog):
    """Fine-tuning from Python: the DataModule reads new text with the model's own tokenizers."""
    dm = TranslationDataModule(str(toy_folder), pair="en-xx", max_tokens=200, tokenizers=translator.tokenizers)
    datasets.fingerprint.fingerprint_warnings.clear()  # (datasets warns once a process)
    datasets.utils.logging.enable_propagation()
    try:
        dm.setup("fit")
    finally:
        datasets.utils.logging.disable_propagation()
    assert not [r.message for r in caplog.records if "hashed" in r.message]  # datasets' warning on every fine-tune
    assert "tokenizers" not in dm.written and not list(dm.cache_folder.glob("tokenizer-*.json"))
    assert (
        dm.src_tokenizer_json == translator.hparams.src_tokenizer
        and dm.src_vocab_size == translator.hparams.src_vocab_size
    )
    first = dm.datasets["train"][0]
    assert first["src_ids"] == translator.encode_sources([first["src"]])[0].ids
    # Text the tokenizers never saw: a word tokenizer maps its words to <unk>, and setup says how many.
    words = train_tokenizer("word", [["a man runs", "the dog"]], 50)
    other = tmp_path / "other"
    other.mkdir()
    for split in ("train", "val", "test"):
        (other / f"{split}.en").write_text("zebras graze quietly\n" * 20)
        (other / f"{split}.xx").write_text("a dog\n" * 20)
    unknown = TranslationDataModule(str(other), pair="en-xx", max_tokens=200, tokenizers=(words, words))
    with pytest.warns(UserWarning, match=r"100.0% of the training source tokens are <unk>"):
        unknown.setup("fit")
    with pytest.raises(ValueError, match="tokenizers must be a"):
        TranslationDataModule(str(other), pair="en-xx", tokenizers=("not", "tokenizers"))


def test_tatoeba_splits_by_english_sentence_the_same_way_everywhere(shared_data, monkeypatch):
    from datamodules.parallel_corpus import load_parallel

    monkeypatch.setenv("ZOO_DATA_DIR", str(shared_data))
    splits = {split: load_parallel("tatoeba", "en-fr", split) for split in ("train", "val", "test")}
    # Recorded results (BENCHMARKS.md, model cards) name this split: its sizes are part of the contract.
    assert {split: len(text.src) for split, text in splits.items()} == {"train": 11900, "val": 674, "test": 647}
    english = {split: set(text.src) for split, text in splits.items()}
    assert not english["train"] & english["val"] and not english["train"] & english["test"]
    assert not english["val"] & english["test"]
    backwards = load_parallel("tatoeba", "fr-en", "val")
    assert backwards.src == splits["val"].tgt and backwards.tgt == splits["val"].src


def test_tatoeba_without_its_file_says_where_it_looked(monkeypatch, tmp_path):
    from datamodules.parallel_corpus import load_parallel

    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(CorpusError, match=r"(?s)tatoeba: en-fr.tsv not found.*Fix: copy en-fr.tsv"):
        load_parallel("tatoeba", "en-fr", "train")
    with pytest.raises(CorpusError, match="unknown language pair 'en-de'"):
        load_parallel("tatoeba", "en-de", "train")
