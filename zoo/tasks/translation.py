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
from tokenizers import Encoding, Tokenizer
from torchmetrics import MeanMetric
from torchmetrics.text import SacreBLEUScore

from datamodules.collate import TranslationBatch, collate_pairs
from datamodules.text_tokenizer import SpecialIds, decode
from zoo.tasks.checked_checkpoints import CheckedCheckpoints
from zoo.tasks.flops import FORWARD, TRAINING, dense_parameters
from zoo.tasks.freezable_parts import FreezableParts
from zoo.tasks.translation_inputs import Source, checked_sources, encode_sources


class TranslationTask(CheckedCheckpoints, FreezableParts, ABC):
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

    def encode_sources(self, sentences: list[Source]) -> list[Encoding]:
        """Raw sentences -> their source encodings (token ids and pieces, <eos> not yet added), which the
        translate methods take as they take text: a caller that must measure sentences first encodes once."""
        return encode_sources(self.tokenizers[0], sentences)

    def source_batch(self, sources: list[Source], truncate: bool = False) -> TranslationBatch:
        """Raw (or encoded) sentences -> a padded batch of sources (src, src_pad_mask), each ending in <eos>, as
        ``generate`` takes them; empty and (unless ``truncate``) too long sentences refused."""
        return self._collate_sources(checked_sources(self.encode_sources(sources), self.max_source_tokens, truncate))

    def _collate_sources(self, checked: list[tuple[list[int], list[str]]]) -> TranslationBatch:
        return collate_pairs([{"src_ids": ids, "tgt_ids": []} for ids, _ in checked], self.special_ids)

    @torch.no_grad()
    def translate(self, sources: list[Source], truncate: bool = False, **options) -> list[str]:
        """Translate raw (or encoded) sentences, one batch; ``options`` as for ``generate`` (greedy by default).
        ``truncate``: translate the first ``max_source_tokens - 1`` tokens of a longer sentence instead of refusing it."""
        return [n_best[0][0] for n_best in self.translate_n_best(sources, truncate, **options)]

    @torch.no_grad()
    def translate_n_best(
        self, sources: list[Source], truncate: bool = False, attention: bool = False, **options
    ) -> list[list[tuple]]:
        """Per sentence, its ``n_best`` translations best first, each (text, score); with ``attention``,
        (text, score, {"src": source pieces, "tgt": target pieces, "attention": (target, source) weights or None
        for a model without}), each hypothesis with its own attention."""
        checked = checked_sources(self.encode_sources(sources), self.max_source_tokens, truncate)
        batch = self._collate_sources(checked)
        results = self._generate(batch["src"], batch["src_pad_mask"], **{"return_attention": attention, **options})
        if not attention:
            return [[(self.detokenize(h.tokens), h.score) for h in hypotheses] for hypotheses in results]
        return [
            [
                (self.detokenize(h.tokens), h.score, self._attention_detail(pieces, h.tokens.tolist(), h.attention))
                for h in hypotheses
            ]
            for (_, pieces), hypotheses in zip(checked, results)
        ]

    @torch.no_grad()
    def attention_details(self, src_ids: list[int], src_pieces: list[str], hypotheses: list[list[int]]) -> list[dict]:
        """The attention behind each of ``hypotheses`` (token ids) of one source (its ids, <eos> excluded, and
        pieces), as ``translate_n_best(attention=True)`` reports it, recomputed in one teacher-forced pass: for
        decoders that do not record it as they go (the server's engine, zoo/serving/engine.py). The rows are
        padded at the end, where the causal decoder's earlier positions cannot see it."""
        n, longest = len(hypotheses), max(len(tokens) for tokens in hypotheses)
        batch = self._collate_sources([(src_ids, src_pieces)] * n)
        src, mask = batch["src"].to(self.device), batch["src_pad_mask"].to(self.device)
        inputs = torch.full((n, longest), self.special_ids.pad, dtype=torch.long)
        for row, tokens in enumerate(hypotheses):  # the input behind each token: <bos>, then the tokens before it
            inputs[row, : len(tokens)] = torch.tensor([self.bos_id, *tokens[:-1]])
        _, _, weights = self.decode(inputs.to(self.device), self.init_state(self.encode(src, mask), mask, n), True)
        return [
            self._attention_detail(src_pieces, tokens, None if weights is None else weights[row, : len(tokens)])
            for row, tokens in enumerate(hypotheses)
        ]

    def _attention_detail(self, src_pieces: list[str], tokens: list[int], weights: torch.Tensor | None) -> dict:
        """One hypothesis's pieces and its attention (target, source), cut to the source's pieces and <eos>."""
        tgt_pieces = [self.tokenizers[1].id_to_token(i) for i in tokens]
        attention = None if weights is None else weights[:, : len(src_pieces) + 1].cpu()  # + <eos>
        return {"src": src_pieces + ["<eos>"], "tgt": tgt_pieces, "attention": attention}
