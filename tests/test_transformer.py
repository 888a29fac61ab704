"""Transformer: positional encodings, causality, pads, cached decoding against full recomputation, a toy task."""

import math

import pytest
import torch

from datamodules.collate import collate_pairs
from tests.conftest import SEED, only, run_zoo, save_checkpoint, toy_data_args, zoo_here
from tests.toy_tasks import reverse_task, train_until
from tests.wandb_records import history_rows
from zoo.models.transformer import Transformer
from zoo.modules.kv_cache import KVCache
from zoo.modules.positional_encoding import sinusoidal_table


def tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    options = dict(
        d_model=32,
        heads=4,
        encoder_layers=2,
        decoder_layers=2,
        ffn_dim=64,
        dropout=0.0,
        learning_rate=2e-3,
        warmup_steps=100,
        label_smoothing=0.0,
    )
    return Transformer(12, 12, **{**options, **kwargs})


def test_sinusoidal_encoding_follows_the_formula():
    table = sinusoidal_table(50, 16)
    for p in (0, 1, 7, 49):
        for i in range(8):
            angle = p / 10000 ** (2 * i / 16)
            assert table[p, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[p, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)


def test_sin_only_aliases_positions_that_sin_cos_keeps_apart():
    sin_only, sin_cos = sinusoidal_table(200, 16, sin_only=True), sinusoidal_table(200, 16)
    pair = slice(0, 2)  # the fastest-turning pair of dimensions
    distances = torch.cdist(sin_only[:, pair], sin_only[:, pair])
    distances.fill_diagonal_(float("inf"))
    p, q = divmod(int(distances.argmin()), 200)
    assert distances[p, q] < 0.01  # two distinct positions look the same in this pair ...
    assert torch.dist(sin_cos[p, pair], sin_cos[q, pair]) > 0.1  # ... but not with sin and cos
    full = torch.cdist(sin_cos, sin_cos)
    full.fill_diagonal_(float("inf"))
    assert full.min() > 0.05  # every position's full encoding is distinct


def logits_of(model, batch):
    memory = model.encode(batch["src"], batch["src_pad_mask"])
    logits, _, _ = model.decode(batch["tgt_in"], model.init_state(memory, batch["src_pad_mask"], len(batch["src"])))
    return logits


@torch.no_grad()
def test_future_target_tokens_and_pads_change_nothing_earlier():
    model = tiny().eval()
    base = collate_pairs([{"src_ids": [4, 5, 6], "tgt_ids": [7, 8, 9, 10]}])
    changed = collate_pairs([{"src_ids": [4, 5, 6], "tgt_ids": [7, 8, 5, 5]}])
    torch.testing.assert_close(logits_of(model, changed)[:, :3], logits_of(model, base)[:, :3])
    padded = collate_pairs(
        [{"src_ids": [4, 5, 6], "tgt_ids": [7, 8, 9, 10]}, {"src_ids": list(range(3, 12)), "tgt_ids": [4] * 9}]
    )
    torch.testing.assert_close(logits_of(model, padded)[0, :5], logits_of(model, base)[0], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_cached_decoding_equals_a_full_forward_pass():
    model = tiny().eval()
    batch = collate_pairs([{"src_ids": [4, 5, 6, 7], "tgt_ids": []}, {"src_ids": [8, 9], "tgt_ids": []}])
    for strategy in ("greedy", "beam"):
        results = model.generate(
            batch["src"], batch["src_pad_mask"], strategy=strategy, beam_size=3, n_best=1, max_len=8, length_penalty=0.0
        )
        for row, (best,) in enumerate(results):
            one = {k: v[row : row + 1] for k, v in batch.items() if torch.is_tensor(v)}
            tgt_in = torch.cat([torch.tensor([model.bos_id]), best.tokens[:-1]])[None]
            memory = model.encode(one["src"], one["src_pad_mask"])
            logits, _, _ = model.decode(tgt_in, model.init_state(memory, one["src_pad_mask"], 1))
            full = logits[0].log_softmax(-1).gather(1, best.tokens[:, None]).sum()
            assert best.log_prob == pytest.approx(float(full), abs=1e-4)


# Reaching 0.98 took 250-450 steps over seeds 0-3; the cap leaves twice the most. (This test once asked for
# exact match 1.0 after exactly 400 steps: 0.89 on an AVX2 CPU, whose rounding took another trajectory.)
@pytest.mark.trains
def test_learns_to_reverse_strings():
    model = tiny(seed=SEED, d_model=64, ffn_dim=128)
    held_out = reverse_task(200, seed=SEED + 1000)
    score, steps = train_until(model, reverse_task(3000, seed=SEED), held_out, bar=0.95, max_steps=1000, seed=SEED)
    assert score >= 0.95, f"exact match {score:.3f} after {steps} steps"


@pytest.mark.slow  # ~14 s; `zoo fit` then `zoo test` stays in the default run for Seq2Seq, `zoo fit` of a Transformer in test_fine_tuning_cli
def test_zoo_fit_then_test_a_transformer(toy_folder, monkeypatch, capsys):
    from pathlib import Path

    from zoo import load_model

    work = toy_folder.parent
    config = str(Path(__file__).resolve().parents[1] / "configs" / "transformer" / "multi30k_en_fr.yaml")
    args = [
        *toy_data_args(toy_folder, vocab_size=100, max_tokens=400),
        "--model.init_args.d_model",
        "32",
        "--model.init_args.ffn_dim",
        "64",
        "--model.init_args.warmup_steps",
        "4",
        "--trainer.max_steps",
        "8",
        "--trainer.val_check_interval",
        "4",
        "--trainer.enable_progress_bar",
        "false",
    ]
    fit = run_zoo("fit", "--config", config, *args, cwd=work)
    assert fit.returncode == 0, fit.stderr[-3000:]
    logged = {key for row in history_rows(only(work.glob("runs/wandb/offline-run-*/run-*.wandb"))) for key in row}
    assert {"val/bleu", "translations/_type", "attention/0/_type"} <= logged, sorted(
        logged
    )  # TranslationSamplesCallback
    last = only(work.glob("runs/seq-zoo/*/checkpoints/last.ckpt"))
    monkeypatch.chdir(work)  # `zoo test` in this process (fit above ran as a user's separate process), without W&B
    assert zoo_here("test", "--config", config, *args, "--trainer.logger", "false", "--ckpt_path", str(last)) == (0, "")
    assert "test/bleu" in capsys.readouterr().out
    model = load_model(last)
    same = Transformer.load_from_checkpoint(last).eval()  # Lightning's own loader: no DataModule, no config
    assert same.translate(["a man runs"]) == model.translate(["a man runs"])
    assert model.src_embedding is model.tgt_embedding is not None  # joint vocabulary: one tied matrix
    assert model.output.weight is model.tgt_embedding.weight
    sentences, beam = ["a man runs", "the red ball"], {"strategy": "beam", "beam_size": 3}
    assert model.translate(sentences, **beam) == [model.translate([s], **beam)[0] for s in sentences]


def copy_attention(ours, theirs):
    D = ours.query.in_features
    ours.query.weight.data, ours.query.bias.data = theirs.in_proj_weight[:D].clone(), theirs.in_proj_bias[:D].clone()
    ours.key_value.weight.data = theirs.in_proj_weight[D:].clone()
    ours.key_value.bias.data = theirs.in_proj_bias[D:].clone()
    ours.out.weight.data, ours.out.bias.data = theirs.out_proj.weight.clone(), theirs.out_proj.bias.clone()


def copy_feed_forward_and_norms(ours, theirs, norms):
    ours.feed_forward[0].load_state_dict(theirs.linear1.state_dict())
    ours.feed_forward[2].load_state_dict(theirs.linear2.state_dict())
    for i, name in enumerate(norms):  # torch numbers them in the order of the sub-layers
        getattr(ours, f"{name}_norm").load_state_dict(getattr(theirs, f"norm{i + 1}").state_dict())


@pytest.mark.parametrize("norm_first", [True, False])
@torch.no_grad()
def test_layers_match_torch_reference_layers(norm_first):
    from torch import nn

    from zoo.modules.transformer_layers import CrossMemory, DecoderBlock, EncoderBlock

    torch.manual_seed(0)
    D, H, F = 16, 4, 32
    ref_enc = nn.TransformerEncoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ref_dec = nn.TransformerDecoderLayer(D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    enc, dec = EncoderBlock(D, H, F, 0.0, norm_first).eval(), DecoderBlock(D, H, F, 0.0, norm_first).eval()
    copy_attention(enc.attention, ref_enc.self_attn)
    copy_feed_forward_and_norms(enc, ref_enc, ["self_attention", "feed_forward"])
    copy_attention(dec.self_attention, ref_dec.self_attn)
    copy_attention(dec.cross_attention, ref_dec.multihead_attn)
    copy_feed_forward_and_norms(dec, ref_dec, ["self_attention", "cross_attention", "feed_forward"])

    src, tgt = torch.randn(2, 7, D), torch.randn(2, 5, D)
    pad = torch.tensor([[False] * 7, [False] * 4 + [True] * 3])
    torch.testing.assert_close(enc(src, pad)[0, :], ref_enc(src, src_key_padding_mask=pad)[0, :], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        enc(src, pad)[1, :4], ref_enc(src, src_key_padding_mask=pad)[1, :4], atol=1e-5, rtol=1e-5
    )

    causal = nn.Transformer.generate_square_subsequent_mask(5)
    expected = ref_dec(tgt, src, tgt_mask=causal, memory_key_padding_mask=pad, tgt_is_causal=True)
    memory = CrossMemory(dec.cross_attention.keys_values(src), pad)
    ours, _, _ = dec(tgt, KVCache.empty(2, H, D // H, like=src), memory)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_attention_weights_match_torch_and_decoding_reports_them_unchanged():
    from torch import nn

    from zoo.modules.multi_head_attention import MultiHeadAttention

    torch.manual_seed(0)
    theirs, ours = nn.MultiheadAttention(16, 4, batch_first=True).eval(), MultiHeadAttention(16, 4)
    copy_attention(ours, theirs)
    x, memory = torch.randn(2, 3, 16), torch.randn(2, 6, 16)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    _, expected = theirs(x, memory, memory, key_padding_mask=pad, need_weights=True, average_attn_weights=True)
    torch.testing.assert_close(ours.weights(x, ours.keys_values(memory)[0], pad), expected, atol=1e-6, rtol=1e-5)

    # The model's reported cross-attention changes no decision; each row sums to 1 over the real source tokens.
    model = tiny().eval()
    src = torch.tensor([[4, 5, 6, 7, 2], [8, 9, 2, 0, 0]])
    src_pad = src == 0
    for options in (dict(strategy="greedy", max_len=6), dict(strategy="beam", beam_size=3, n_best=2, max_len=6)):
        plain = model.generate(src, src_pad, **options)
        reported = model.generate(src, src_pad, return_attention=True, **options)
        for row, (a, b) in enumerate(zip(plain, reported)):
            assert [h.tokens.tolist() for h in a] == [h.tokens.tolist() for h in b]
            for h in b:
                assert h.attention.shape == (len(h.tokens), 5)
                torch.testing.assert_close(h.attention.sum(-1), torch.ones(len(h.tokens)))
                assert bool((h.attention[:, src_pad[row]] == 0).all())


@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [3, 200])
def test_one_query_attention_matches_torch(dtype, rows, monkeypatch):
    """A decoding step (one query per row) of many rows takes its own path, not torch's fused kernel (a few rows
    keep the kernel): either way it must give torch's attention, padded keys masked, in fp32 and in bf16 (to bf16's
    precision)."""
    from torch import nn

    from zoo.modules import multi_head_attention
    from zoo.modules.multi_head_attention import MultiHeadAttention

    # where the own path starts depends on the CPU (on AMX, never in bf16): both paths are covered on every CPU
    monkeypatch.setitem(multi_head_attention.ONE_QUERY_MIN_ROWS, dtype, 100)
    taken = []
    own_path = MultiHeadAttention._attend_one_query
    monkeypatch.setattr(
        MultiHeadAttention, "_attend_one_query", staticmethod(lambda *a: taken.append(1) or own_path(*a))
    )
    torch.manual_seed(0)
    theirs, ours = nn.MultiheadAttention(16, 4, batch_first=True).eval(), MultiHeadAttention(16, 4)
    copy_attention(ours, theirs)
    x, memory = torch.randn(rows, 1, 16), torch.randn(rows, 6, 16)
    pad = torch.rand(rows, 6) < 0.3
    pad[:, 0] = False  # every row sees a key
    expected, _ = theirs(x, memory, memory, key_padding_mask=pad, need_weights=False)
    ours = ours.to(dtype)
    out = ours(x.to(dtype), *ours.keys_values(memory.to(dtype)), key_pad_mask=pad)
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(out.float(), expected, atol=tolerance, rtol=tolerance)
    assert bool(taken) == (rows == 200)


@torch.no_grad()
def test_decoder_only_lm_cached_generation_matches_full_pass():
    from zoo import TransformerLM

    torch.manual_seed(0)
    model = TransformerLM(5, "\nabcd", d_model=16, heads=2, layers=2, ffn_dim=32, dropout=0.0).eval()
    prompt = torch.tensor([[1, 2, 3], [4, 4, 1]])
    for strategy in ("greedy", "beam"):
        results = model.generate(prompt=prompt, max_len=6, strategy=strategy, beam_size=3, length_penalty=0.0)
        for row, (best,) in enumerate(results):
            tokens = torch.cat([prompt[row], best.tokens])[None]
            logits, _, _ = model.decode(tokens, model.init_state(None, None, 1))
            log_probs = logits[0, prompt.shape[1] - 1 : -1].log_softmax(-1)
            assert best.log_prob == pytest.approx(float(log_probs.gather(1, best.tokens[:, None]).sum()), abs=1e-4)


def test_zoo_fit_then_generate_with_the_char_transformer(small_corpus, monkeypatch, capsys):
    from pathlib import Path

    work = small_corpus.parent
    config = str(Path(__file__).resolve().parents[1] / "configs" / "transformer" / "shakespeare_char.yaml")
    args = [
        "--data.init_args.source",
        str(small_corpus),
        "--data.init_args.seq_len",
        "32",
        "--model.init_args.d_model",
        "32",
        "--model.init_args.heads",
        "2",
        "--model.init_args.layers",
        "1",
        "--trainer.max_steps",
        "6",
        "--trainer.val_check_interval",
        "3",
        "--trainer.limit_val_batches",
        "2",
        "--trainer.enable_progress_bar",
        "false",
    ]
    monkeypatch.chdir(work)  # in this process, without W&B: test_cli and the Transformer test run `zoo fit` apart
    assert zoo_here("fit", "--config", config, *args, "--trainer.logger", "false") == (0, "")
    last = only(work.glob("checkpoints/last.ckpt"))
    capsys.readouterr()
    assert zoo_here("generate", "--checkpoint", str(last), "--prompt", "ROMEO:", "--length", "40", "--seed", "0") == (
        0,
        "",
    )
    out = capsys.readouterr().out
    assert out.startswith("ROMEO:") and len(out) == len("ROMEO:") + 40 + 1


def test_checkpoint_average_is_the_elementwise_mean_and_loads(tmp_path):
    from zoo import CheckpointError, Transformer, load_model
    from zoo.hub.checkpoint_averaging import average_checkpoints
    from zoo.hub.checkpoints import read_checkpoint

    first, second = tiny(), tiny()
    with torch.no_grad():
        for p in second.parameters():
            p.add_(torch.randn_like(p))
    snapshots = [save_checkpoint(first, tmp_path / "a.ckpt", 100), save_checkpoint(second, tmp_path / "b.ckpt", 200)]
    path = average_checkpoints(snapshots, tmp_path / "avg.ckpt")
    for averaged in (load_model(path), Transformer.load_from_checkpoint(path)):
        for name, value in averaged.state_dict().items():
            assert torch.allclose(value, (first.state_dict()[name] + second.state_dict()[name]) / 2, atol=1e-6), name
    saved = read_checkpoint(path)
    assert (saved["global_step"], saved["averaged_checkpoints"]) == (200, 2)  # the last snapshot's step
    reversed_order = read_checkpoint(average_checkpoints(snapshots[::-1], tmp_path / "avg2.ckpt"))
    assert reversed_order["global_step"] == 100
    with pytest.raises(CheckpointError, match="other hyperparameters"):
        average_checkpoints(
            [save_checkpoint(tiny(ffn_dim=32), tmp_path / "c.ckpt"), tmp_path / "a.ckpt"], tmp_path / "bad.ckpt"
        )


def test_decoding_lengths_respect_the_models_positions():
    from zoo.models.transformer_lm import TransformerLM

    lm = TransformerLM(5, "\nabcd", d_model=16, heads=2, layers=1, ffn_dim=32, max_positions=20).eval()
    prompt = torch.tensor([[1, 2, 3]])
    assert len(lm.generate(prompt=prompt, max_len=18)[0][0].tokens) == 18  # 3 + 18 - 1 fed positions = 20
    with pytest.raises(ValueError, match="at most 18 new tokens"):
        lm.generate(prompt=prompt, max_len=19)
    translator = tiny(max_positions=12).eval()
    src = torch.randint(3, 12, (2, 5))
    out = translator.generate(src, src == 0, max_len=50, min_len=12)  # a ceiling above the positions: clamped to 12
    assert all(len(h[0].tokens) == 12 for h in out)
