"""TranslationDataModule: parallel text -> tokenized, cached, bucketed and padded batches.

What it writes into the cache (the training text as Arrow, the tokenizers, each split's token ids) is
written in ``prepare_data``, which Lightning runs on one process per node, under a file lock, so that
processes started together (torchrun, SLURM) write each file once and read it after. ``setup`` only reads.
The CLI's links need the vocabulary sizes before any Trainer exists: ``tokenizers`` writes them (under the
same lock) if they are not there yet.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import datasets
import lightning as L
import numpy as np
import pyarrow.compute as pc
import torch
from filelock import FileLock
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from datamodules.bucket_sampler import BucketBatchSampler
from datamodules.checks import require_in, require_positive
from datamodules.collate import collate_pairs
from datamodules.parallel_corpus import SPLITS, ParallelText, corpus_files, load_parallel, write_pairs_arrow
from datamodules.sources import cache_dir
from datamodules.text_tokenizer import SpecialIds, TokenizerKind, train_tokenizer
from datamodules.training_position import restate_progress, training_position

# The columns of a tokenized split. Token ids and lengths as int32: every vocabulary fits, and the cache on disk
# and the pages read from it are half what int64 would take (benchmarks/data_scale.py).
TOKENIZED = datasets.Features(
    {
        "src": datasets.Value("string"),
        "tgt": datasets.Value("string"),
        "src_ids": datasets.List(datasets.Value("int32")),
        "tgt_ids": datasets.List(datasets.Value("int32")),
        "src_len": datasets.Value("int32"),
        "tgt_len": datasets.Value("int32"),
    }
)

ROWS_PER_RECORD_BATCH = 50_000  # of a tokenized split's Arrow file (as the training text's, parallel_corpus.py)

# The splits each Lightning stage reads (the stage names are those of `zoo fit/validate/test/predict`).
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


class Splits(Mapping[str, ParallelText]):
    """train, val and test, each loaded on first use."""

    def __init__(self, load):
        self._load, self._loaded = load, {}

    def __getitem__(self, split: str) -> ParallelText:
        if split not in SPLITS:
            raise KeyError(split)
        if split not in self._loaded:
            self._loaded[split] = self._load(split)
        return self._loaded[split]

    def __iter__(self):
        return iter(SPLITS)

    def __len__(self) -> int:
        return len(SPLITS)


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
        tokenizers: to fine-tune a trained model, its (source, target) tokenizers (``model.tokenizers``): the text
            is tokenized with them and none is trained (``tokenizer``, ``vocab_size`` and ``joint_vocab`` then
            come from them). A training split with more than 1% <unk> tokens is warned about at setup.
        mix_source: mixed fine-tuning (Chu et al., 2017): another corpus, usually the one the model was trained on
            (e.g. ``multi30k``), whose training pairs join the training split so the model keeps its first domain
            while it learns this one. A fixed sample of its pairs (drawn with ``seed``) makes up ``mix_share`` of the
            training split, read with the same tokenizers; shuffled batches then hold that share on average.
            Validation and test stay this corpus's.
        mix_share: the share of training pairs drawn from ``mix_source``, in (0, 1).
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
        tokenizers: Any = None,
        mix_source: str | None = None,
        mix_share: float = 0.3,
    ):
        super().__init__()
        # Checkpoints carry the arguments (model cards name the data); given tokenizers travel in the model.
        self.save_hyperparameters(ignore=["tokenizers"], logger=False)
        self.given_tokenizers = None if tokenizers is None else tuple(tokenizers)
        if self.given_tokenizers is not None:
            if len(self.given_tokenizers) != 2 or not all(isinstance(t, Tokenizer) for t in self.given_tokenizers):
                raise ValueError(
                    "tokenizers must be a (source, target) pair of tokenizers.Tokenizer (model.tokenizers)"
                )
            joint_vocab = self.given_tokenizers[0].to_str() == self.given_tokenizers[1].to_str()
        require_positive(vocab_size=vocab_size, max_tokens=max_tokens, batch_size=batch_size, max_len=max_len)
        require_in("(0, 1)", mix_share=mix_share)
        if mix_source is not None and mix_source == source:
            raise ValueError(
                f"mix_source is the source itself ({source!r}). Fix: name another corpus, or leave it out."
            )
        self.mix_source, self.mix_share = mix_source, mix_share
        self.mixed_in = 0  # training pairs drawn from mix_source (set at setup)
        if (max_tokens is None) == (batch_size is None):
            raise ValueError("set exactly one of max_tokens and batch_size (the other to null)")
        self.source, self.pair, self.tokenizer_kind = source, pair, tokenizer
        # Not "self.vocab_size": the CLI links a DataModule's vocab_size into language models.
        self.tokenizer_vocab_size, self.joint_vocab = vocab_size, joint_vocab
        self.max_tokens, self.batch_size, self.max_len = max_tokens, batch_size, max_len
        self.seed, self.num_workers = seed, num_workers
        self.datasets: dict[str, datasets.Dataset] = {}
        self.cache_report: dict[str, str] = {}  # split -> "tokenized" | "cached"
        self.written: list[str] = []  # what this object wrote into the cache (the rest it found there)
        self.dropped_long = 0
        self.skipped_empty_train = 0  # training pairs with an empty side (set when the training text is read)
        self._resume_position: dict[str, int] = {}
        self._train_sampler: BucketBatchSampler | None = None  # the training loader's (its position is saved)

    # --- text and tokenizers (built on first use: the CLI links vocab sizes at instantiation) ---

    @cached_property
    def texts(self) -> Splits:
        """Each split as lists of sentences, read on first use of that split. Setup reads none of them for
        training: the training text streams from its files into Arrow (``train_text``)."""
        return Splits(lambda split: load_parallel(self.source, self.pair, split))

    @cached_property
    def train_files(self) -> list[Path] | None:
        """The files the training split is read from (None for a Hugging Face dataset)."""
        return corpus_files(self.source, self.pair, "train")

    @cached_property
    def corpus_folder(self) -> Path:
        """One folder per corpus content: a digest of the training files' bytes (of the text, for a Hugging
        Face dataset), so an edited corpus is never served from an old cache."""
        digest = hashlib.sha256(f"{self.source}|{self.pair}".encode())
        if self.train_files is None:
            for side in (self.texts["train"].src, self.texts["train"].tgt):
                digest.update("\n".join(side).encode())
        for path in self.train_files or ():
            with open(path, "rb") as file:
                while block := file.read(1 << 22):
                    digest.update(block)
        return cache_dir() / "translation" / digest.hexdigest()[:16]

    @cached_property
    def cache_lock(self) -> FileLock:
        """Held while this corpus's cache is written (re-entrant): one writer across processes, the others wait
        and then find the files."""
        self.corpus_folder.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(self.corpus_folder.with_suffix(".lock"))

    @cached_property
    def cache_folder(self) -> Path:
        """One folder per corpus content and tokenizer setting."""
        setting = f"{self.tokenizer_kind}-{self.tokenizer_vocab_size}-{'joint' if self.joint_vocab else 'separate'}"
        if self.given_tokenizers is not None:  # one folder per given tokenizer pair
            setting = (
                "given-" + hashlib.sha256("".join(t.to_str() for t in self.given_tokenizers).encode()).hexdigest()[:16]
            )
        return self.corpus_folder / setting

    @cached_property
    def train_text(self) -> datasets.Dataset:
        """The training pairs (columns src, tgt), memory-mapped from an Arrow file written once by streaming the
        corpus files (a Hugging Face dataset: built from its text)."""
        if self.train_files is None:
            text = self.texts["train"]
            self.skipped_empty_train = text.skipped_empty
            return datasets.Dataset.from_dict({"src": text.src, "tgt": text.tgt})
        path, counts = self.corpus_folder / "train-text.arrow", self.corpus_folder / "train-text.json"
        with self.cache_lock:
            if not (path.is_file() and counts.is_file()):
                self.written.append("train text")
                skipped = write_pairs_arrow(self.train_files, path)  # atomic
                counts.write_text(json.dumps({"skipped_empty": skipped}), encoding="utf-8")
        self.skipped_empty_train = json.loads(counts.read_text(encoding="utf-8"))["skipped_empty"]
        return datasets.Dataset.from_file(str(path))

    def _train_sentences(self, columns: tuple[str, ...]):
        """Batches of training sentences from the Arrow file, for the tokenizer trainer."""
        for batch in self.train_text.select_columns(list(columns)).iter(batch_size=10_000):
            for column in columns:
                yield batch[column]

    @cached_property
    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """(source, target) tokenizers: the given ones, or trained once and reused from the cache."""
        if self.given_tokenizers is not None:
            return self.given_tokenizers
        names = ("joint",) if self.joint_vocab else ("src", "tgt")
        paths = [self.cache_folder / f"tokenizer-{name}.json" for name in names]
        with self.cache_lock:
            if not all(p.is_file() for p in paths):
                self.written.append("tokenizers")
                self.train_text  # read here: the trainer draws sentences from its own threads, outside the lock
                sides = [("src", "tgt")] if self.joint_vocab else [("src",), ("tgt",)]
                self.cache_folder.mkdir(parents=True, exist_ok=True)
                for path, columns in zip(paths, sides):
                    tokenizer = train_tokenizer(
                        self.tokenizer_kind, self._train_sentences(columns), self.tokenizer_vocab_size
                    )
                    partial = path.with_name(f".{path.name}.partial")
                    tokenizer.save(str(partial))
                    partial.replace(path)  # a reader never sees half a file
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

    # --- tokenized datasets ---

    def prepare_data(self) -> None:
        """Writes the token ids of the splits this run's stage uses (all outside a Trainer) into the cache, with
        the training text and tokenizers they need; what is there already is kept."""
        stage = self.trainer.state.fn.value if self.trainer is not None and self.trainer.state.fn else None
        for split in STAGE_SPLITS.get(stage, SPLITS):
            self._write_tokenized(split)

    def setup(self, stage: str | None = None) -> None:
        """Reads the splits ``stage`` uses (all for None): a fit needs no test files, a test no validation files.
        A split not yet in the cache (setup called without prepare_data) is written first."""
        for split in STAGE_SPLITS.get(stage, SPLITS):
            if split not in self.datasets:
                self._write_tokenized(split)
                self.datasets[split] = self._tokenized(split)
        if "train" in self.datasets:
            if self.given_tokenizers is not None:
                self._warn_about_unknown_tokens()
            if self.mix_source is not None and not self.mixed_in:
                self.datasets["train"] = self._mixed(self.datasets["train"])
            self._check_budget()

    def _mixed(self, own: datasets.Dataset) -> datasets.Dataset:
        """``own`` training pairs and a fixed sample of ``mix_source``'s, ``mix_share`` of the whole."""
        other = TranslationDataModule(
            self.mix_source, self.pair, max_tokens=None, batch_size=1, max_len=self.max_len, tokenizers=self.tokenizers
        )
        other._write_tokenized("train")
        theirs = other._tokenized("train")
        wanted = round(len(own) * self.mix_share / (1 - self.mix_share))
        if wanted > len(theirs):
            raise ValueError(
                f"mix_share {self.mix_share} needs {wanted:,} pairs of {self.mix_source!r}, which has {len(theirs):,}. "
                f"Fix: a mix_share of at most {len(theirs) / (len(theirs) + len(own)):.2f}."
            )
        picked = np.sort(np.random.default_rng(self.seed).choice(len(theirs), wanted, replace=False))
        self.mixed_in = wanted
        sample = theirs.select(picked.tolist()).flatten_indices(keep_in_memory=True)
        sample = sample.cast(own.features)  # (a cache written before int32 ids holds int64)
        return datasets.concatenate_datasets([own, sample])

    def _tokenized_path(self, split: str) -> Path:
        max_len = self.max_len if split == "train" else None
        return self.cache_folder / (f"{split}.arrow" if max_len is None else f"{split}-max_len-{max_len}.arrow")

    def _write_tokenized(self, split: str) -> None:
        """A split's token ids (and lengths, and the text) as an Arrow file in the cache, once; the training split
        without the pairs that have a side longer than ``max_len`` (dropped as they are tokenized, and counted)."""
        path = self._tokenized_path(split)
        with self.cache_lock:
            if path.is_file():
                self.cache_report.setdefault(split, "cached")
                return
            self.cache_report[split] = "tokenized"
            self.written.append(f"{split} tokens")
            if split == "train":
                raw = self.train_text
            else:  # val and test: small
                raw = datasets.Dataset.from_dict({"src": self.texts[split].src, "tgt": self.texts[split].tgt})
            raw.map(  # (datasets writes a temporary file and renames it: the file is whole or absent)
                partial(self._encode, max_len=self.max_len if split == "train" else None),
                batched=True,
                # Big record batches: opening a memory-mapped file reads every batch's header, and the pages the
                # OS reads around each; at 1,000 rows a batch (the default) that was 180 MB at 2.9M pairs.
                batch_size=ROWS_PER_RECORD_BATCH,
                writer_batch_size=ROWS_PER_RECORD_BATCH,
                remove_columns=["src", "tgt"],  # given back by _encode, for the rows it keeps
                features=TOKENIZED,
                cache_file_name=str(path),
                # The path names the corpus content and the tokenizers (cache_folder): its digest is the result's
                # identity. Left to datasets, it hashes _encode with this DataModule, fails on the given tokenizers,
                # and warns at length on every fine-tuning run.
                new_fingerprint=hashlib.sha256(str(path).encode()).hexdigest()[:16],
            )

    def _tokenized(self, split: str) -> datasets.Dataset:
        """A split as prepared: memory-mapped from its Arrow file."""
        dataset = datasets.Dataset.from_file(str(self._tokenized_path(split)))
        if split == "train":
            total = len(self.train_text)  # memory-mapped: its length costs nothing
            self.dropped_long = total - len(dataset)
            if len(dataset) == 0:
                raise ValueError(
                    f"max_len {self.max_len} drops every one of the {total} training pairs (each has a side "
                    f"longer than {self.max_len} tokens). Fix: raise max_len (128 keeps nearly all sentences), or null."
                )
        return dataset

    def _encode(self, batch: dict[str, list[str]], max_len: int | None) -> dict[str, list]:
        src = [e.ids for e in self.tokenizers[0].encode_batch(batch["src"])]
        tgt = [e.ids for e in self.tokenizers[1].encode_batch(batch["tgt"])]
        keep = [i for i, (s, t) in enumerate(zip(src, tgt)) if max_len is None or max(len(s), len(t)) <= max_len]
        return {
            "src": [batch["src"][i] for i in keep],
            "tgt": [batch["tgt"][i] for i in keep],
            "src_ids": [src[i] for i in keep],
            "tgt_ids": [tgt[i] for i in keep],
            "src_len": [len(src[i]) for i in keep],
            "tgt_len": [len(tgt[i]) for i in keep],
        }

    def _warn_about_unknown_tokens(self) -> None:
        """Tokenizers trained on other text may not know this text's words: say how much becomes <unk>."""
        unk = self.special_ids.unk
        for side, column in (("source", "src_ids"), ("target", "tgt_ids")):
            ids = pc.list_flatten(self.datasets["train"].data.column(column))
            share = pc.sum(pc.equal(ids, unk)).as_py() / len(ids) if len(ids) else 0.0
            if share > 0.01:
                warnings.warn(
                    f"{share:.1%} of the training {side} tokens are <unk> under the given tokenizers (more than 1%): "
                    f"the model cannot read or write those words. Fix: a char or BPE tokenizer covers any text; "
                    f"or train a new model on this data (without tokenizers)."
                )

    def _check_budget(self) -> None:
        if self.max_tokens is None:
            return
        src, tgt = self.lengths("train")
        longest_sides = np.maximum(src, tgt)
        longest = int(longest_sides.max()) + 1  # + <eos> or <bos>
        if self.max_tokens < longest:
            # Only suggest a max_len that leaves data: the longest that fits the budget, with what it keeps.
            fitting = int((longest_sides < self.max_tokens).sum())
            shorter = (
                f", or max_len {self.max_tokens - 1} (keeps {fitting} of the {len(src)} pairs)"
                if fitting >= len(src) // 2
                else ""
            )
            raise ValueError(
                f"max_tokens {self.max_tokens} is smaller than the longest kept training example ({longest} tokens "
                f"with its <eos>). Fix: max_tokens {longest} or more{shorter}."
            )

    # --- loaders ---

    def lengths(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The source and target token counts of a split, as arrays: all the sampler reads of the data."""
        table = self.datasets[split].data  # memory-mapped Arrow: only these two columns' pages are read
        return table.column("src_len").to_numpy(), table.column("tgt_len").to_numpy()

    def sampler(self, split: str) -> BucketBatchSampler:
        src, tgt = self.lengths(split)
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return BucketBatchSampler(
            src + 1,  # + <eos>
            tgt + 1,  # + <bos> / <eos>
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
        if split == "train":
            self._train_sampler = sampler
            if self._resume_position:
                self._resume(sampler, self._resume_position)
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

    def _resume(self, sampler: BucketBatchSampler, position: dict[str, int]) -> None:
        """Start the sampler where the checkpoint's epoch stood, dealing its rest to this run's processes."""
        # Checkpoints before resuming on another number of processes counted one rank's batches ("consumed").
        done = position["done"] if "done" in position else position["consumed"] * sampler.num_replicas
        sampler.load_state_dict({"epoch": position["epoch"], "done": done, "seed": self.seed})
        restate_progress(self.trainer, len(sampler) - sampler.batches_left() if done else len(sampler))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def state_dict(self) -> dict[str, int]:
        """In every checkpoint: where training stands, as batches of the epoch's order done by all processes, so
        that a resumed run, on as many processes or not, continues that order where it stopped. (Counted from
        Lightning's progress, not the sampler's, which includes the batch Lightning prefetched; see
        datamodules/training_position.py.)"""
        position = training_position(self.trainer)
        if not position:
            return {}
        done = self._train_sampler.done(position["batches_done"]) if position["batches_done"] else 0
        return {"epoch": position["epoch"], "done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_position = dict(state)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def summary(self) -> str:
        counts = {split: len(ds) for split, ds in self.datasets.items()}
        skipped = {"train": self.skipped_empty_train} if self.skipped_empty_train else {}
        evaluation = [s for s in ("val", "test") if s in self.datasets]
        skipped |= {s: self.texts[s].skipped_empty for s in evaluation if self.texts[s].skipped_empty}
        report = {"pairs": counts, "skipped_empty": skipped, "dropped_longer_than_max_len": self.dropped_long}
        if self.mixed_in:
            report["train_pairs_from_mix_source"] = self.mixed_in
        return json.dumps(report)
