"""Padding token-id pairs into a translation batch, to the longest sequence of the batch."""

from __future__ import annotations

from typing import TypedDict

import torch
from torch.nn.utils.rnn import pad_sequence

from datamodules.text_tokenizer import SpecialIds


class TranslationBatch(TypedDict):
    src: torch.Tensor  # (B, S) source ids, each ending in <eos>, right-padded with <pad>
    src_lengths: torch.Tensor  # (B,) real source tokens, <eos> included
    src_pad_mask: torch.Tensor  # (B, S) True exactly at pad positions
    tgt_in: torch.Tensor  # (B, T) decoder input: <bos> y_1 ... y_n, padded
    tgt_out: torch.Tensor  # (B, T) decoder target: y_1 ... y_n <eos>, padded
    tgt_pad_mask: torch.Tensor  # (B, T) True exactly at pad positions (the same for tgt_in and tgt_out)
    tgt_text: list[str]  # the raw target sentences, references for BLEU


def pad(sequences: list[list[int]], pad_id: int) -> torch.Tensor:
    """(B, longest) ids, right-padded with ``pad_id``."""
    return pad_sequence([torch.tensor(s, dtype=torch.long) for s in sequences], batch_first=True, padding_value=pad_id)


def collate_pairs(examples: list[dict], ids: SpecialIds = SpecialIds()) -> TranslationBatch:
    """``examples``: dicts with ``src_ids`` and ``tgt_ids`` (token ids without specials) and ``tgt`` (text); ``ids``:
    the special ids of the tokenizer that made them (the data module and the models pass their own)."""
    src = pad([e["src_ids"] + [ids.eos] for e in examples], ids.pad)
    tgt_in = pad([[ids.bos] + e["tgt_ids"] for e in examples], ids.pad)
    tgt_out = pad([e["tgt_ids"] + [ids.eos] for e in examples], ids.pad)
    return TranslationBatch(
        src=src,
        src_lengths=torch.tensor([len(e["src_ids"]) + 1 for e in examples]),
        src_pad_mask=src == ids.pad,
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_pad_mask=tgt_out == ids.pad,
        tgt_text=[e.get("tgt", "") for e in examples],
    )
