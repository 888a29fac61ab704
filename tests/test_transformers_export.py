"""`zoo export --format transformers`: the folder loads in transformers with its own classes, offline, and
decodes what our model decodes, token for token."""

import gzip
import os
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import zoo
from tests.conftest import zoo_here
from zoo.generation.options import length_penalty
from zoo.hub.checkpoints import CheckpointError
from zoo.interop.transformers_export import export_transformers

PRETRAINED = "transformer-multi30k-en-fr"


def test_logits_of_the_export_equal_ours(translator, tmp_path, monkeypatch):
    """A random model: any weight mapped to the wrong place or feature order shows in the logits."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, w in translator.named_parameters():  # layer norms away from 1 and 0, so their order matters
        if "norm" in name:
            torch.nn.init.normal_(w, 0.5, 0.3)
    folder = export_transformers(translator, tmp_path / "hf")
    hf = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    sentences = ["a man runs", "the red dog jumps over a small child in the park"]
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    ours = translator.source_batch(sentences, truncate=False)
    assert torch.equal(batch.input_ids, ours["src"]) and torch.equal(batch.attention_mask.bool(), ~ours["src_pad_mask"])
    targets = torch.tensor([[1, 7, 9, 12, 5], [1, 30, 4, 4, 8]])
    with torch.no_grad():
        hidden, _, _ = translator.decode_hidden(
            targets,
            translator.init_state(translator.encode(ours["src"], ours["src_pad_mask"]), ours["src_pad_mask"], 2),
        )
        expected = translator.output(hidden)  # logits, as transformers returns them
        got = hf(**batch, decoder_input_ids=targets).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_what_has_no_pegasus_equivalent_is_refused(translator, tmp_path):
    post_norm = zoo.Transformer(**{**translator.hparams, "norm_first": False, "d_model": 16, "heads": 2})
    with pytest.raises(CheckpointError, match="norm_first must be true"):
        export_transformers(post_norm, tmp_path / "a")
    with pytest.raises(CheckpointError, match="only zoo.Transformer translators"):
        export_transformers(zoo.CharRNN(vocab_size=5, hidden_size=8, num_layers=1), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "mine.txt").write_text("keep")
    with pytest.raises(CheckpointError, match="--force"):
        export_transformers(translator, tmp_path / "c")
    assert (tmp_path / "c" / "mine.txt").read_text() == "keep"


@pytest.fixture(scope="module")
def test_sentences() -> list[str]:
    data = os.environ.get("ZOO_DATA_DIR")
    path = Path(data or ".", "multi30k", "test_2016_flickr.en.gz")
    if not path.is_file():
        pytest.skip("needs the real corpora: set ZOO_DATA_DIR to a folder holding multi30k/")
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return [line.strip() for line in file][:200]


@pytest.fixture(scope="module")
def shipped_export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "hf"
    assert zoo_here("export", "--pretrained", PRETRAINED, "--format", "transformers", "--out", str(out)) == (0, "")
    return out


def test_the_shipped_translator_decodes_the_same_tokens_in_transformers(shipped_export, test_sentences, monkeypatch):
    """Greedy and beam 5 on the first 200 test sentences. Beam search without a length penalty: transformers
    divides a hypothesis' log-probability by length ** alpha, we by GNMT's ((5 + length) / 6) ** alpha."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ours = zoo.load_pretrained(PRETRAINED)
    hf = AutoModelForSeq2SeqLM.from_pretrained(shipped_export).eval()
    tokenizer = AutoTokenizer.from_pretrained(shipped_export)
    assert length_penalty(7, 0.0) == 1.0  # alpha 0: both searches rank by the summed log-probability
    for options, hf_options in (
        ({"strategy": "greedy"}, {"num_beams": 1}),
        ({"strategy": "beam", "beam_size": 5, "length_penalty": 0.0}, {"num_beams": 5, "length_penalty": 0.0}),
    ):
        for start in range(0, len(test_sentences), 50):
            chunk = test_sentences[start : start + 50]
            batch = ours.source_batch(chunk, truncate=False)
            with torch.no_grad():
                expected = ours.generate(batch["src"], batch["src_pad_mask"], **options)
                # our limit, 1.5 x source (<eos> included) + 10 tokens, for the batch's longest source
                limit = int(ours.hparams.max_len_a * batch["src"].shape[1] + ours.hparams.max_len_b)
                got = hf.generate(
                    **tokenizer(chunk, return_tensors="pt", padding=True), max_new_tokens=limit, **hf_options
                )
            ids = ours.special_ids
            for row, hypotheses in zip(got.tolist(), expected):
                tokens = hypotheses[0].tokens.tolist()
                assert row[: len(tokens) + 1] == [ids.bos] + tokens, options
                if tokens[-1] == ids.eos:  # (else it reached our length limit, 1.5 x source + 10; one does)
                    # transformers fills the rest of the batch's length with <pad> (greedy) or <eos> (beam)
                    assert set(row[len(tokens) + 1 :]) <= {ids.pad, ids.eos}


def test_text_in_text_out_offline_with_transformers_own_classes(shipped_export, monkeypatch):
    """What a transformers user writes (transformers 5 removed pipeline("translation"); 4.x has it)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(shipped_export)
    model = AutoModelForSeq2SeqLM.from_pretrained(shipped_export)
    sentences = ["A man in a blue shirt is riding a bike.", "Two dogs play in the snow."]
    output = model.generate(**tokenizer(sentences, return_tensors="pt", padding=True))
    got = tokenizer.batch_decode(output, skip_special_tokens=True)
    assert got == zoo.load_pretrained(PRETRAINED).translate(sentences)
