"""What every translation model in the zoo shares: losses, BLEU, checks, and `translate`.

A model mixes in ``TranslationTask`` after ``DecodingMixin`` and provides
``sequence_loss(batch) -> (summed negative log-likelihood, number of target tokens)``.
Validation reports loss, perplexity and SacreBLEU (13a, detokenized hypotheses against the
raw references) with greedy decoding; test reports SacreBLEU with beam search. BLEU is a
torchmetrics metric, so it is reduced correctly across DDP ranks.
"""

from __future__ import annotations

from functools import cached_property

import torch
from tokenizers import Tokenizer
from torchmetrics import MeanMetric
from torchmetrics.text import SacreBLEUScore

from datamodules.collate import TranslationBatch, collate_pairs
from datamodules.text_tokenizer import decode
from zoo.checkpoints import CheckpointError, ChecksCheckpointClass


class TranslationTask(ChecksCheckpointClass):
    def _init_translation_task(self) -> None:
        # torchmetrics, so that under DDP the epoch values are those of all ranks' sentences together.
        self.val_bleu = SacreBLEUScore(tokenize="13a")
        self.test_bleu = SacreBLEUScore(tokenize="13a")
        self.val_nll, self.test_nll = MeanMetric(), MeanMetric()  # per target token

    @cached_property
    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        src, tgt = self.hparams.src_tokenizer, self.hparams.tgt_tokenizer
        if src is None or tgt is None:
            raise ValueError("this model was built without tokenizers: it translates token ids only (generate)")
        return Tokenizer.from_str(src), Tokenizer.from_str(tgt)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint whose vocabulary differs from this run's DataModule (before shapes clash)."""
        saved = checkpoint.get("hyper_parameters", {})
        for side in ("src", "tgt"):
            theirs, ours = saved.get(f"{side}_tokenizer"), self.hparams.get(f"{side}_tokenizer")
            if theirs is not None and ours is not None and theirs != ours:
                raise CheckpointError(
                    f"the checkpoint's {side} vocabulary differs from this run's data. Fix: use the data "
                    f"settings it was trained with (source, pair, tokenizer, vocab_size, joint_vocab)."
                )

    def training_step(self, batch: TranslationBatch, batch_idx: int) -> torch.Tensor:
        total, count = self.sequence_loss(batch)
        loss = total / count
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=int(count))
        self.log("train/ppl", torch.exp(loss.detach()), on_step=True, on_epoch=True, batch_size=int(count))
        return loss

    def _evaluate(self, batch: TranslationBatch, nll: MeanMetric, bleu: SacreBLEUScore, **decoding) -> None:
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

    def _generate(self, src: torch.Tensor, src_pad_mask: torch.Tensor, **options):
        """``generate`` with this model's length limits (max_len_a * source length + max_len_b) by default."""
        limits = {"max_len_a": self.hparams.max_len_a, "max_len_b": self.hparams.max_len_b}
        return self.generate(src.to(self.device), src_pad_mask.to(self.device), **{**limits, **options})

    def _decode_batch(self, batch: TranslationBatch, **options) -> list[str]:
        results = self._generate(batch["src"], batch["src_pad_mask"], **options)
        return [decode(self.tokenizers[1], hypotheses[0].tokens.tolist()) for hypotheses in results]

    def _source_batch(self, sentences: list[str]):
        """Raw sentences -> their source encodings and a padded batch; empty sentences are refused."""
        empty = [i for i, s in enumerate(sentences) if not s.strip()]
        if empty:
            raise ValueError(f"source sentence(s) {empty} are empty: there is nothing to translate.")
        encoded = self.tokenizers[0].encode_batch(sentences)
        return encoded, collate_pairs([{"src_ids": e.ids, "tgt_ids": []} for e in encoded])

    @torch.no_grad()
    def translate(self, sentences: list[str], **options) -> list[str]:
        """Translate raw sentences (one batch); ``options`` as for ``generate`` (greedy by default)."""
        return [n_best[0][0] for n_best in self.translate_n_best(sentences, **options)]

    @torch.no_grad()
    def translate_n_best(self, sentences: list[str], **options) -> list[list[tuple[str, float]]]:
        """Per sentence, its ``n_best`` translations (beam search) with their scores, best first."""
        _, batch = self._source_batch(sentences)
        results = self._generate(batch["src"], batch["src_pad_mask"], **options)
        return [[(decode(self.tokenizers[1], h.tokens.tolist()), h.score) for h in hypotheses] for hypotheses in results]

    @torch.no_grad()
    def translate_with_attention(self, sentences: list[str], **options) -> list[tuple[str, dict]]:
        """Per sentence: the translation, and {"src": source pieces, "tgt": target pieces,
        "attention": (target pieces, source pieces) weights} (attention None for models without)."""
        encoded, batch = self._source_batch(sentences)
        tgt_tok = self.tokenizers[1]
        results = self._generate(batch["src"], batch["src_pad_mask"], **{"return_attention": True, **options})
        out = []
        for e, hypotheses in zip(encoded, results):
            best = hypotheses[0]
            pieces = [tgt_tok.id_to_token(i) for i in best.tokens.tolist()]
            attention = None if best.attention is None else best.attention[:, : len(e.ids) + 1].cpu()  # + <eos>
            out.append((decode(tgt_tok, best.tokens.tolist()), {"src": e.tokens + ["<eos>"], "tgt": pieces, "attention": attention}))
        return out
