"""Other engines for the shipped translator: CTranslate2 (float32 and int8) and our own model in int8.
Float32 CTranslate2 decodes what we decode; int8 costs at most 0.3 BLEU on the test set (greedy)."""

import gzip
import os
from pathlib import Path

import pytest
import sacrebleu
import torch

import zoo
from tests.conftest import zoo_here
from zoo.interop.ctranslate2_engine import CTranslate2Translator
from zoo.modules.int8 import int8_copy

PRETRAINED = "transformer-multi30k-en-fr"


@pytest.fixture(scope="module")
def test_set() -> tuple[list[str], list[str]]:
    folder = Path(os.environ.get("ZOO_DATA_DIR") or ".", "multi30k")
    if not (folder / "test_2016_flickr.en.gz").is_file():
        pytest.skip("needs the real corpora: set ZOO_DATA_DIR to a folder holding multi30k/")
    sides = []
    for language in ("en", "fr"):
        with gzip.open(folder / f"test_2016_flickr.{language}.gz", "rt", encoding="utf-8") as file:
            sides.append([line.strip() for line in file])
    return sides[0], sides[1]


def translate_all(engine, sentences: list[str], **options) -> list[str]:
    return [
        t
        for start in range(0, len(sentences), 100)
        for t in engine.translate(sentences[start : start + 100], **options)
    ]


@pytest.fixture(scope="module")
def model():
    return zoo.load_pretrained(PRETRAINED)


@pytest.fixture(scope="module")
def greedy_reference(model, test_set) -> tuple[list[str], float]:
    """Our float32 model's greedy translations of the test set, and their BLEU."""
    hypotheses = translate_all(model, test_set[0])
    return hypotheses, sacrebleu.corpus_bleu(hypotheses, [test_set[1]]).score


@pytest.fixture(scope="module")
def ctranslate2_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("engines") / "ct2"
    assert zoo_here("export", "--pretrained", PRETRAINED, "--format", "ctranslate2", "--out", str(out)) == (0, "")
    return out


def test_float32_ctranslate2_decodes_what_we_decode(model, ctranslate2_folder, test_set, greedy_reference):
    """Greedy on the first 200 sentences, and beam 5 without a length penalty (CTranslate2 divides by
    length ** alpha, we by ((5 + length) / 6) ** alpha: the same search only at alpha 0)."""
    engine = CTranslate2Translator(ctranslate2_folder, compute_type="float32")
    sentences = test_set[0][:200]
    assert translate_all(engine, sentences) == greedy_reference[0][:200]
    beam = {"strategy": "beam", "beam_size": 5, "length_penalty": 0.0}
    assert translate_all(engine, sentences, **beam) == translate_all(model, sentences, **beam)


def test_ctranslate2_int8_costs_at_most_0_3_bleu(ctranslate2_folder, test_set, greedy_reference):
    """On all 1000 sentences: on a few hundred, BLEU moves by more than that either way. (The zoo's own int8,
    `--compute-type int8`, is measured by benchmarks/translation_engines.py: +0.1 BLEU.)"""
    engine = CTranslate2Translator(ctranslate2_folder, compute_type="int8")
    bleu = sacrebleu.corpus_bleu(translate_all(engine, test_set[0]), [test_set[1]]).score
    assert bleu >= greedy_reference[1] - 0.3, (bleu, greedy_reference[1])


def test_int8_copies_quantize_every_linear_layer_and_still_translate(model):
    quantized = int8_copy(model)
    assert not any(type(m) is torch.nn.Linear for m in quantized.modules())
    assert any(type(m) is torch.nn.Linear for m in model.modules())  # the original is left as it was
    # Not equal to float32's output on every CPU (int8 kernels differ between CPUs), but still French for it.
    assert "homme" in quantized.translate(["A man in a blue shirt is riding a bike."])[0]


def test_zoo_translate_with_ctranslate2_int8_keeps_every_line(ctranslate2_folder, capsys):
    lines = "A dog runs in the snow.\n\nTwo men are playing chess.\n"
    args = ["--checkpoint", str(ctranslate2_folder), "--engine", "ctranslate2", "--compute-type", "int8"]
    assert zoo_here("translate", *args, stdin=lines) == (0, "")
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 4 and out[1] == "" and out[3] == "" and "chien" in out[0] and out[2]


def test_engine_errors_name_the_fix(tmp_path, capsys):
    code, message = zoo_here("translate", "--checkpoint", str(tmp_path), "--engine", "ctranslate2", stdin="a\n")
    assert code == 1 and "Fix: write one with `zoo export --format ctranslate2" in message
    code, message = zoo_here("translate", "--pretrained", PRETRAINED, "--engine", "ctranslate2", stdin="a\n")
    assert code == 1 and "pass it as --checkpoint" in message
