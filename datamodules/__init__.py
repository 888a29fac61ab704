"""Data: text sources and caches, tokenizers, batching (streams, windows, buckets), collation."""

from datamodules.bucket_sampler import BucketBatchSampler
from datamodules.char_datamodule import CharDataModule
from datamodules.char_vocab import CharVocab
from datamodules.sources import CorpusError
from datamodules.translation_datamodule import TranslationDataModule

__all__ = ["BucketBatchSampler", "CharDataModule", "CharVocab", "CorpusError", "TranslationDataModule"]
