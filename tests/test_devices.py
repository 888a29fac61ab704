"""No tensor is created on the default device behind the model's back: decoding and training build every tensor
on the device of the model or its inputs (or, for host-side bookkeeping, explicitly on the CPU).

Checked on a CPU: the default device is set to "meta" while a CPU model trains and decodes, so a tensor made
without ``device=`` lands on meta and the step fails (on a GPU it would land on the CPU and fail there, or
copy silently at every step)."""

import pytest
import torch

from datamodules.collate import collate_pairs
from tests.conftest import SEED
from zoo import CharRNN, Seq2Seq, Transformer, TransformerLM

DECODING = [
    dict(strategy="greedy", return_attention=True),
    dict(strategy="beam", beam_size=3, n_best=2, return_attention=True),
    dict(strategy="sample", top_p=0.9),  # unseeded: its seed comes from the host's generator
]


def translation_models():
    torch.manual_seed(SEED)
    yield Seq2Seq(12, 12, embedding_dim=8, hidden_size=8, teacher_forcing=0.5)
    yield Seq2Seq(12, 12, embedding_dim=8, hidden_size=8, attention="general", input_feeding=False, cell="lstm")
    yield Transformer(12, 12, d_model=8, heads=2, encoder_layers=1, decoder_layers=1, ffn_dim=16)


@pytest.mark.parametrize("model", translation_models(), ids=["bahdanau", "luong", "transformer"])
def test_translation_models_train_and_decode_without_default_device_tensors(model):
    batch = collate_pairs([{"src_ids": [4, 5, 6], "tgt_ids": [7, 8]}, {"src_ids": [9], "tgt_ids": [5, 6, 7]}])
    with torch.device("meta"):
        loss, count = model.train().sequence_loss(batch)
        loss.backward()
        for options in DECODING:
            results = model.eval().generate(batch["src"], batch["src_pad_mask"], max_len=4, **options)
            assert all(h.tokens.device.type == "cpu" for hypotheses in results for h in hypotheses)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("model", [CharRNN(5, hidden_size=8, num_layers=1), TransformerLM(5, d_model=8, heads=2)])
def test_language_models_train_and_decode_without_default_device_tensors(model):
    inputs = torch.randint(5, (2, 6))
    with torch.device("meta"):
        model.train().language_model_logits(inputs).sum().backward()
        for options in DECODING[1:]:
            results = model.eval().generate(prompt=inputs[:, :2], max_len=4, **options)
            assert all(h.tokens.device.type == "cpu" for hypotheses in results for h in hypotheses)
