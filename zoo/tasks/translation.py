"""What every translation model in the zoo shares: losses, BLEU, checks, and `translate`.

A model lists ``TranslationTask`` before ``DecodingMixin`` among its bases (its decoding_defaults win), provides
``sequence_loss(batch) -> (summed negative log-likelihood, number of target tokens)``, sets
``max_source_tokens``, the longest source (<eos> included) it reads, and names its source-side layers
``encoder`` and its output layer ``output`` (for the FLOP estimate of zoo/tasks/flops.py).
Validation reports loss, perplexity and SacreBLEU (13a, detokenized hypotheses against the
raw references) with greedy decoding; test reports SacreBLEU with beam search. BLEU is a
torchmetrics metric, so it is reduced correctly across DDP ranks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property

import torch
from tokenizers import Tokenizer
from torchmetrics import MeanMetric
from torchmetrics.text import SacreBLEUScore

from datamodules.collate import TranslationBatch, collate_pairs
from datamodules.text_tokenizer import SpecialIds, decode
from zoo.hub.checkpoints import ChecksCheckpointClass
from zoo.tasks.flops import FORWARD, TRAINING, dense_parameters


class TranslationTask(ChecksCheckpointClass, ABC):
    max_source_tokens: int  # set by the model: the longest source (<eos> included) it reads
    flops_per_batch: int | None = None  # of the latest batch, for Lightning's ThroughputMonitor (zoo.tasks.flops)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # torchmetrics, so that under DDP the epoch values are those of all ranks' sentences together.
        self.val_bleu = SacreBLEUScore(tokenize="13a")
        self.test_bleu = SacreBLEUScore(tokenize="13a")
        self.val_nll, self.test_nll = MeanMetric(), MeanMetric()  # per target token

    @abstractmethod
    def sequence_loss(self, batch: TranslationBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced: (summed negative log-likelihood of the targets, number of target tokens)."""

    @cached_property
    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        src, tgt = self.hparams.src_tokenizer, self.hparams.tgt_tokenizer
        if src is None or tgt is None:
            raise ValueError("this model was built without tokenizers: it translates token ids only (generate)")
        return Tokenizer.from_str(src), Tokenizer.from_str(tgt)

    @cached_property
    def special_ids(self) -> SpecialIds:
        """<pad>, <bos>, <eos>, <unk> as the target tokenizer numbers them (built without tokenizers: the defaults)."""
        tokenizer = self.hparams.tgt_tokenizer
        return SpecialIds.of(Tokenizer.from_str(tokenizer)) if tokenizer is not None else SpecialIds()

    @property
    def bos_id(self) -> int:  # where decoding starts (zoo.generation.decoding)
        return self.special_ids.bos

    @property
    def eos_id(self) -> int:  # where a hypothesis ends
        return self.special_ids.eos

    def detokenize(self, ids: torch.Tensor) -> str:
        """Target token ids -> text, up to the first <eos>."""
        return decode(self.tokenizers[1], ids.tolist())

    def _count_flops(self, batch: TranslationBatch) -> None:
        """Teacher-forced FLOPs: encoder parameters per source token, the others per target token."""
        encoder = dense_parameters(self.encoder)
        decoder = dense_parameters(self, self.output) - encoder
        tokens = encoder * int((~batch["src_pad_mask"]).sum()) + decoder * int((~batch["tgt_pad_mask"]).sum())
        self.flops_per_batch = (TRAINING if self.training else FORWARD) * tokens

    def training_step(self, batch: TranslationBatch, batch_idx: int) -> torch.Tensor:
        self._count_flops(batch)
        total, count = self.sequence_loss(batch)
        loss = total / count
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=int(count))
        self.log("train/ppl", torch.exp(loss.detach()), on_step=True, on_epoch=True, batch_size=int(count))
        return loss

    def _evaluate(self, batch: TranslationBatch, nll: MeanMetric, bleu: SacreBLEUScore, **decoding) -> None:
        self._count_flops(batch)  # the loss's forward pass; decoding is not counted
        total, count = self.sequence_loss(batch)
        nll.update(total / count, weight=count)
        bleu.update(self._decode_batch(batch, **decoding), [[ref] for ref in batch["tgt_text"]])

    def _log_evaluation(self, stage: str, nll: MeanMetric, bleu: SacreBLEUScore) -> None:
        loss = nll.compute()
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val")
        self.log(f"{stage}/ppl", torch.exp(loss))
        self.log(f"{stage}/bleu", bleu.compute() * 100, prog_bar=stage == "val")
        nll.reset()
        bleu.reset()

    def validation_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        self._evaluate(batch, self.val_nll, self.val_bleu, strategy="greedy")

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation("val", self.val_nll, self.val_bleu)

    def test_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        self._evaluate(batch, self.test_nll, self.test_bleu, strategy="beam", beam_size=self.hparams.test_beam_size)

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test", self.test_nll, self.test_bleu)

    def decoding_defaults(self) -> dict:
        """Wherever this model decodes (generate, translate, validation, `zoo translate`), its length limit is
        max_len_a * source length + max_len_b unless the caller says otherwise."""
        return {"max_len_a": self.hparams.max_len_a, "max_len_b": self.hparams.max_len_b}

    def _generate(self, src: torch.Tensor, src_pad_mask: torch.Tensor, **options):
        return self.generate(src.to(self.device), src_pad_mask.to(self.device), **options)

    def _decode_batch(self, batch: TranslationBatch, **options) -> list[str]:
        results = self._generate(batch["src"], batch["src_pad_mask"], **options)
        return [self.detokenize(hypotheses[0].tokens) for hypotheses in results]

    def source_lengths(self, sentences: list[str]) -> list[int]:
        """Source tokens per sentence (<eos> excluded): 0 for a sentence with nothing to translate."""
        return [len(e.ids) for e in self.tokenizers[0].encode_batch(sentences)]

    def _source_batch(self, sentences: list[str], truncate: bool):
        """Raw sentences -> their source pieces and a padded batch. Empty sentences are refused; so are
        sentences longer than the model reads (``max_source_tokens``), unless ``truncate``."""
        encoded = self.tokenizers[0].encode_batch(sentences)
        empty = [i for i, e in enumerate(encoded) if not e.ids]
        if empty:
            raise ValueError(f"source sentence(s) {empty} are empty: there is nothing to translate.")
        room = self.max_source_tokens - 1  # and one <eos>
        long = [i for i, e in enumerate(encoded) if len(e.ids) > room]
        if long and not truncate:
            raise ValueError(
                f"source sentence {long[0]} has {len(encoded[long[0]].ids)} tokens, more than the {room} this model "
                f"reads. Fix: split it, or pass truncate=True to translate its first {room} tokens."
            )
        pieces = [e.tokens[:room] for e in encoded]
        return pieces, collate_pairs([{"src_ids": e.ids[:room], "tgt_ids": []} for e in encoded], self.special_ids)

    @torch.no_grad()
    def translate(self, sentences: list[str], truncate: bool = False, **options) -> list[str]:
        """Translate raw sentences (one batch); ``options`` as for ``generate`` (greedy by default).
        ``truncate``: translate the first ``max_source_tokens - 1`` tokens of a longer sentence instead of refusing it."""
        return [n_best[0][0] for n_best in self.translate_n_best(sentences, truncate, **options)]

    @torch.no_grad()
    def translate_n_best(
        self, sentences: list[str], truncate: bool = False, **options
    ) -> list[list[tuple[str, float]]]:
        """Per sentence, its ``n_best`` translations (beam search) with their scores, best first."""
        _, batch = self._source_batch(sentences, truncate)
        results = self._generate(batch["src"], batch["src_pad_mask"], **options)
        return [[(self.detokenize(h.tokens), h.score) for h in hypotheses] for hypotheses in results]

    @torch.no_grad()
    def translate_with_attention(
        self, sentences: list[str], truncate: bool = False, **options
    ) -> list[tuple[str, dict]]:
        """Per sentence: the translation, and {"src": source pieces, "tgt": target pieces,
        "attention": (target pieces, source pieces) weights} (attention None for models without)."""
        best = [n_best[0] for n_best in self.n_best_with_attention(sentences, truncate, **options)]
        return [(text, detail) for text, _score, detail in best]

    @torch.no_grad()
    def n_best_with_attention(
        self, sentences: list[str], truncate: bool = False, **options
    ) -> list[list[tuple[str, float, dict]]]:
        """Per sentence, its ``n_best`` hypotheses best first: (translation, score, {"src", "tgt", "attention"}
        as for ``translate_with_attention``), each with its own attention."""
        pieces, batch = self._source_batch(sentences, truncate)
        tgt_tok = self.tokenizers[1]
        results = self._generate(batch["src"], batch["src_pad_mask"], **{"return_attention": True, **options})
        out = []
        for src_pieces, hypotheses in zip(pieces, results):
            n_best = []
            for hypothesis in hypotheses:
                tgt_pieces = [tgt_tok.id_to_token(i) for i in hypothesis.tokens.tolist()]
                weights = hypothesis.attention
                attention = None if weights is None else weights[:, : len(src_pieces) + 1].cpu()  # + <eos>
                source = {"src": src_pieces + ["<eos>"], "tgt": tgt_pieces, "attention": attention}
                n_best.append((self.detokenize(hypothesis.tokens), hypothesis.score, source))
            out.append(n_best)
        return out
