"""Padding token-id pairs into a translation batch, to the longest sequence of the batch."""

from __future__ import annotations

from typing import TypedDict

import torch
from torch.nn.utils.rnn import pad_sequence

from datamodules.text_tokenizer import BOS_ID, EOS_ID, PAD_ID


class TranslationBatch(TypedDict):
    src: torch.Tensor  # (B, S) source ids, each ending in <eos>, right-padded with <pad>
    src_lengths: torch.Tensor  # (B,) real source tokens, <eos> included
    src_pad_mask: torch.Tensor  # (B, S) True exactly at pad positions
    tgt_in: torch.Tensor  # (B, T) decoder input: <bos> y_1 ... y_n, padded
    tgt_out: torch.Tensor  # (B, T) decoder target: y_1 ... y_n <eos>, padded
    tgt_pad_mask: torch.Tensor  # (B, T) True exactly at pad positions (the same for tgt_in and tgt_out)
    tgt_text: list[str]  # the raw target sentences, references for BLEU


def pad(sequences: list[list[int]]) -> torch.Tensor:
    """(B, longest) ids, right-padded with <pad>."""
    return pad_sequence([torch.tensor(s, dtype=torch.long) for s in sequences], batch_first=True, padding_value=PAD_ID)


def collate_pairs(examples: list[dict]) -> TranslationBatch:
    """``examples``: dicts with ``src_ids`` and ``tgt_ids`` (token ids without specials) and ``tgt`` (text)."""
    src = pad([e["src_ids"] + [EOS_ID] for e in examples])
    tgt_in = pad([[BOS_ID] + e["tgt_ids"] for e in examples])
    tgt_out = pad([e["tgt_ids"] + [EOS_ID] for e in examples])
    return TranslationBatch(
        src=src,
        src_lengths=torch.tensor([len(e["src_ids"]) + 1 for e in examples]),
        src_pad_mask=src == PAD_ID,
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_pad_mask=tgt_out == PAD_ID,
        tgt_text=[e.get("tgt", "") for e in examples],
    )
