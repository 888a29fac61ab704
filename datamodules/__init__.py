"""Data: text sources and caches, tokenization, batching."""

from datamodules.char_datamodule import CharDataModule
from datamodules.char_vocab import CharVocab
from datamodules.sources import CorpusError

__all__ = ["CharDataModule", "CharVocab", "CorpusError"]
