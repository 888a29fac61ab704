"""Subword, word and character tokenizers built with the `tokenizers` library.

All three share one layout, so that decoding gives detokenized text fit for SacreBLEU:
NFKC normalization with runs of whitespace collapsed to one space, spaces turned into a visible marker ``▁`` glued to the next word
(``Metaspace``), and a decoder that turns the marker back into spaces.
  - ``bpe``: byte-pair-encoding subwords over ``▁``-marked words (sentencepiece-like);
  - ``word``: whole words, punctuation split off; rare words become ``<unk>``;
  - ``char``: one token per character.
Every tokenizer holds the special tokens <pad>, <bos>, <eos> and <unk>; their ids are read from the tokenizer
(``SpecialIds.of``) by the data, the models and decoding alike, never assumed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
TokenizerKind = Literal["bpe", "word", "char"]
SPACE_MARKER = "▁"


@dataclass(frozen=True)
class SpecialIds:
    """The ids of <pad>, <bos>, <eos> and <unk>. The defaults are those of every tokenizer ``train_tokenizer`` makes
    (special tokens first), for models built without a tokenizer, on token ids alone."""

    pad: int = 0
    bos: int = 1
    eos: int = 2
    unk: int = 3

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> SpecialIds:
        ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
        missing = [token for token, id_ in ids.items() if id_ is None]
        if missing:
            raise ValueError(
                f"the tokenizer has no {', '.join(missing)} token. Fix: build it with "
                f"datamodules.text_tokenizer.train_tokenizer, which adds {', '.join(SPECIAL_TOKENS)}."
            )
        return cls(*ids.values())


def train_tokenizer(kind: TokenizerKind, texts: Iterable[str] | Iterable[list[str]], vocab_size: int) -> Tokenizer:
    """A tokenizer of ``kind`` trained on ``texts`` (the training split only): sentences, or batches of them,
    read once (a corpus streamed from disk needs no list in memory)."""
    if kind not in ("bpe", "word", "char"):
        raise ValueError(f"tokenizer kind must be 'bpe', 'word' or 'char', got {kind!r}")
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>") if kind == "bpe" else models.WordLevel(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    )
    tokenizer.pre_tokenizer = {
        "bpe": pre_tokenizers.Metaspace(),
        "word": pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()]),
        "char": pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Split(Regex("."), "isolated")]),
    }[kind]
    tokenizer.decoder = decoders.Metaspace()
    special = list(SPECIAL_TOKENS)
    trainer = (
        trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False)
        if kind == "bpe"
        else trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False)
    )
    tokenizer.train_from_iterator(texts, trainer)
    # BPE keeps every character of its training text whatever vocab_size says: more means too small a size.
    if kind == "bpe" and tokenizer.get_vocab_size() > vocab_size:
        raise ValueError(
            f"BPE vocab_size {vocab_size} is smaller than the {len(SPECIAL_TOKENS)} special tokens plus the "
            f"{tokenizer.get_vocab_size() - len(SPECIAL_TOKENS)} characters of the training text. Fix: vocab_size >= "
            f"{tokenizer.get_vocab_size()} (a few thousand is typical)."
        )
    return tokenizer


def tokenizer_kind(tokenizer: Tokenizer) -> str:
    """The kind ``train_tokenizer`` made ``tokenizer`` as: bpe, word or char (char splits every character off)."""
    if isinstance(tokenizer.model, models.BPE):
        return "bpe"
    steps = json.loads(tokenizer.to_str()).get("pre_tokenizer") or {}
    return "char" if any(step.get("type") == "Split" for step in steps.get("pretokenizers", [])) else "word"


def normalize(text: str) -> str:
    """What a round trip through any of these tokenizers gives back (for in-vocabulary text)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def decode(tokenizer: Tokenizer, ids: Iterable[int]) -> str:
    """Detokenized text, without special tokens and stopping at the first <eos>."""
    ids, eos = list(ids), SpecialIds.of(tokenizer).eos
    if eos in ids:
        ids = ids[: ids.index(eos)]
    return tokenizer.decode(ids, skip_special_tokens=True)
