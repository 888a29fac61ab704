"""TranslationDataModule: parallel text -> tokenized, cached, bucketed and padded batches."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property, partial
from pathlib import Path

import datasets
import lightning as L
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from datamodules.bucket_sampler import BucketBatchSampler
from datamodules.checks import require_positive
from datamodules.collate import collate_pairs
from datamodules.parallel_corpus import SPLITS, ParallelText, load_parallel
from datamodules.sources import cache_dir
from datamodules.text_tokenizer import SpecialIds, TokenizerKind, decode, train_tokenizer
from datamodules.training_position import training_position


class TranslationDataModule(L.LightningDataModule):
    """Batches of (source, target) token ids for translation models.

    Args:
        source: ``multi30k``, a folder of ``<split>.<lang>`` or ``<split>.tsv`` files, or
            ``hf:<dataset>[:<config>]`` (see ``datamodules.parallel_corpus``).
        pair: ``src-tgt`` languages, e.g. ``en-fr``.
        tokenizer: ``bpe``, ``word`` or ``char``, trained on the training split only.
        vocab_size: tokenizer vocabulary size (per side when not joint).
        joint_vocab: one tokenizer for both languages (allows tied embeddings).
        max_tokens: token budget per batch (padded size of the longer side); or use
        batch_size: sentences per batch instead.
        max_len: training pairs with a side longer than this (in tokens) are dropped, and counted.
        seed: batch formation and shuffling.
    """

    def __init__(
        self,
        source: str = "multi30k",
        pair: str = "en-fr",
        tokenizer: TokenizerKind = "bpe",
        vocab_size: int = 8000,
        joint_vocab: bool = True,
        max_tokens: int | None = 4000,
        batch_size: int | None = None,
        max_len: int | None = 128,
        seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)  # checkpoints carry them: model cards name the data
        require_positive(vocab_size=vocab_size, max_tokens=max_tokens, batch_size=batch_size, max_len=max_len)
        if (max_tokens is None) == (batch_size is None):
            raise ValueError("set exactly one of max_tokens and batch_size (the other to null)")
        self.source, self.pair, self.tokenizer_kind = source, pair, tokenizer
        # Not "self.vocab_size": the CLI links a DataModule's vocab_size into language models.
        self.tokenizer_vocab_size, self.joint_vocab = vocab_size, joint_vocab
        self.max_tokens, self.batch_size, self.max_len = max_tokens, batch_size, max_len
        self.seed, self.num_workers = seed, num_workers
        self.datasets: dict[str, datasets.Dataset] = {}
        self.cache_report: dict[str, str] = {}  # split -> "tokenized" | "cached"
        self.dropped_long = 0
        self._resume_position: dict[str, int] = {}

    # --- text and tokenizers (built on first use: the CLI links vocab sizes at instantiation) ---

    @cached_property
    def texts(self) -> dict[str, ParallelText]:
        return {split: load_parallel(self.source, self.pair, split) for split in SPLITS}

    @cached_property
    def cache_folder(self) -> Path:
        """One folder per corpus content and tokenizer setting."""
        train = self.texts["train"]
        digest = hashlib.sha256(f"{self.source}|{self.pair}".encode())
        for side in (train.src, train.tgt):
            digest.update("\n".join(side).encode())
        setting = f"{self.tokenizer_kind}-{self.tokenizer_vocab_size}-{'joint' if self.joint_vocab else 'separate'}"
        return cache_dir() / "translation" / digest.hexdigest()[:16] / setting

    @cached_property
    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenizers, trained once and reused from the cache."""
        names = ("joint",) if self.joint_vocab else ("src", "tgt")
        paths = [self.cache_folder / f"tokenizer-{name}.json" for name in names]
        if not all(p.is_file() for p in paths):
            train = self.texts["train"]
            sides = [train.src + train.tgt] if self.joint_vocab else [train.src, train.tgt]
            self.cache_folder.mkdir(parents=True, exist_ok=True)
            for path, texts in zip(paths, sides):
                train_tokenizer(self.tokenizer_kind, texts, self.tokenizer_vocab_size).save(str(path))
        loaded = [Tokenizer.from_file(str(p)) for p in paths]
        return (loaded[0], loaded[0]) if self.joint_vocab else (loaded[0], loaded[1])

    @property
    def src_vocab_size(self) -> int:
        return self.tokenizers[0].get_vocab_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tokenizers[1].get_vocab_size()

    @property
    def src_tokenizer_json(self) -> str:
        """The tokenizer as JSON, for checkpoints: inference needs no DataModule."""
        return self.tokenizers[0].to_str()

    @property
    def tgt_tokenizer_json(self) -> str:
        return self.tokenizers[1].to_str()

    @property
    def special_ids(self) -> SpecialIds:
        """The ids of <pad>, <bos>, <eos>, <unk>, as the tokenizers hold them (models read theirs from the same
        tokenizers, which travel to them through the CLI's links)."""
        src, tgt = (SpecialIds.of(t) for t in self.tokenizers)
        if src != tgt:
            raise ValueError(f"the source and target tokenizers number their special tokens differently ({src}, {tgt})")
        return tgt

    def decode_target(self, ids) -> str:
        return decode(self.tokenizers[1], ids)

    # --- tokenized datasets ---

    def setup(self, stage: str | None = None) -> None:
        for split in SPLITS:
            if split not in self.datasets:
                self.datasets[split] = self._tokenized(split)
        self._check_budget()

    def _tokenized(self, split: str) -> datasets.Dataset:
        path = self.cache_folder / f"{split}.arrow"
        if path.is_file():
            self.cache_report[split] = "cached"
            dataset = datasets.Dataset.from_file(str(path))
        else:
            self.cache_report[split] = "tokenized"
            text = self.texts[split]
            raw = datasets.Dataset.from_dict({"src": text.src, "tgt": text.tgt})
            dataset = raw.map(self._encode, batched=True, batch_size=2000, cache_file_name=str(path))
        if split == "train" and self.max_len is not None:
            kept = dataset.filter(
                lambda src_len, tgt_len: [s <= self.max_len and t <= self.max_len for s, t in zip(src_len, tgt_len)],
                input_columns=["src_len", "tgt_len"],
                batched=True,
                keep_in_memory=True,
            )
            self.dropped_long = len(dataset) - len(kept)
            if len(kept) == 0:
                raise ValueError(
                    f"max_len {self.max_len} drops every one of the {len(dataset)} training pairs (each has a side "
                    f"longer than {self.max_len} tokens). Fix: raise max_len (128 keeps nearly all sentences), or null."
                )
            dataset = kept
        return dataset

    def _encode(self, batch: dict[str, list[str]]) -> dict[str, list]:
        src = [e.ids for e in self.tokenizers[0].encode_batch(batch["src"])]
        tgt = [e.ids for e in self.tokenizers[1].encode_batch(batch["tgt"])]
        return {"src_ids": src, "tgt_ids": tgt, "src_len": list(map(len, src)), "tgt_len": list(map(len, tgt))}

    def _check_budget(self) -> None:
        if self.max_tokens is None:
            return
        train = self.datasets["train"]
        longest = max(max(train["src_len"]), max(train["tgt_len"])) + 1  # + <eos> or <bos>
        if self.max_tokens < longest:
            raise ValueError(
                f"max_tokens {self.max_tokens} is smaller than the longest kept training example ({longest} tokens "
                f"with its <eos>). Fix: max_tokens >= {longest}, or max_len below {self.max_tokens}."
            )

    # --- loaders ---

    def sampler(self, split: str) -> BucketBatchSampler:
        dataset = self.datasets[split]
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return BucketBatchSampler(
            [n + 1 for n in dataset["src_len"]],  # + <eos>
            [n + 1 for n in dataset["tgt_len"]],  # + <bos> / <eos>
            max_tokens=self.max_tokens,
            batch_size=self.batch_size,
            shuffle=split == "train",
            seed=self.seed,
            num_replicas=world,
            rank=rank,
            even_shards=split == "train",  # evaluation sees every batch, so metrics match one process
        )

    def _loader(self, split: str) -> DataLoader:
        dataset = self.datasets[split].select_columns(["src_ids", "tgt_ids", "tgt"])
        sampler = self.sampler(split)
        if split == "train" and self._resume_position:
            sampler.load_state_dict({**self._resume_position, "seed": self.seed})
            self._resume_position = {}
        # Its own generator: creating an iterator must not draw from the global one, or a resumed
        # run's dropout masks would differ from the run it continues (callbacks/random_state.py).
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=partial(collate_pairs, ids=self.special_ids),
            num_workers=self.num_workers,
            generator=generator,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def state_dict(self) -> dict[str, int]:
        """In every checkpoint: where training stands, so that a resumed run continues the epoch's
        batch order where it stopped. (The sampler's own count would include the batch Lightning
        prefetched; see datamodules/training_position.py.)"""
        position = training_position(self.trainer)
        return {"epoch": position["epoch"], "consumed": position["batches_done"]} if position else {}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_position = dict(state)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def summary(self) -> str:
        counts = {split: len(ds) for split, ds in self.datasets.items()}
        skipped = {split: text.skipped_empty for split, text in self.texts.items() if text.skipped_empty}
        return json.dumps({"pairs": counts, "skipped_empty": skipped, "dropped_longer_than_max_len": self.dropped_long})
