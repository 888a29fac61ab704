"""Transformer training throughput: Lightning vs a plain PyTorch loop vs Hugging Face Marian, and MFU.

Model: d 256, 3+3 layers, 4 heads, FFN 1024, joint BPE 8k with tied embeddings, dropout
0.1 (on embeddings and sub-layer outputs), label smoothing 0.1, on Multi30k en-fr batches of at most 4000 tokens from the shared
TranslationDataModule (the shipped config's sizes). Contenders, same batches, AdamW with
the same warm-up schedule and gradient clipping at 1.0:
  - lightning: ``zoo.Transformer`` trained by a Lightning Trainer on the DataModule;
  - lightning bf16: the same under ``precision="bf16-mixed"`` (fp32 weights and optimizer, bf16 matrix
    products: what `zoo fit` defaults to where the CPU has native bf16, zoo/modules/compute_types.py);
  - plain: the same model class in a hand-written loop over the same DataModule's batches;
  - plain bf16: that loop with its forward under ``torch.autocast("cpu", torch.bfloat16)``;
  - marian: ``transformers.MarianMTModel`` built from a config of the same sizes (post-norm,
    as Marian is), the loss computed the same way from its logits.
Windows alternate in one process, the order swapped every round (the machine's speed
drifts); each window skips its first steps. Throughput is real (non-pad) target tokens per
second. MFU is the model's matmul FLOPs on the real tokens (forward x 3 for training,
attention included) per second, over this machine's fp32 matmul peak measured in the same
run.

    python benchmarks/transformer_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from datamodules import TranslationDataModule
from zoo import Transformer
from zoo.modules.schedules import warmup_inverse_sqrt

WARMUP = 3
SIZES = dict(d_model=256, heads=4, encoder_layers=3, decoder_layers=3, ffn_dim=1024, dropout=0.1)


def matmul_peak_gflops(seconds: float = 3.0) -> float:
    """Best fp32 GFLOP/s of large square matmuls: the machine's practical peak."""
    best = 0.0
    for n in (1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        deadline = time.perf_counter() + seconds / 2
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def training_flops(batch, vocab: int) -> float:
    """Matmul FLOPs of one training step on the real tokens: 3 x forward (backward is 2 x forward)."""
    d, f, enc, dec = SIZES["d_model"], SIZES["ffn_dim"], SIZES["encoder_layers"], SIZES["decoder_layers"]
    s = batch["src_lengths"].double()
    t = (~batch["tgt_pad_mask"]).sum(1).double()
    S, T = s.sum(), t.sum()
    encoder = enc * (S * (8 * d * d + 4 * d * f) + 4 * d * (s * s).sum())
    decoder = dec * (
        T * (8 * d * d + 4 * d * d + 4 * d * f)  # self q/k/v/o, cross q/o, feed-forward
        + S * 4 * d * d  # cross-attention keys and values
        + 2 * d * (t * (t + 1)).sum()  # causal self-attention scores and mixing
        + 4 * d * (s * t).sum()  # cross-attention scores and mixing
    )
    output = T * 2 * d * vocab
    return float(3 * (encoder + decoder + output))


class StepTimer(Callback):
    def __init__(self):
        self.start = self.end = None
        self.tokens = self.flops = 0.0
        self.vocab = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == WARMUP:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= WARMUP:
            self.end = time.perf_counter()
            self.tokens += float((~batch["tgt_pad_mask"]).sum())
            self.flops += training_flops(batch, self.vocab)


def lightning_window(model: Transformer, dm, steps: int, precision: str = "32-true") -> tuple[float, float]:
    timer = StepTimer()
    timer.vocab = dm.tgt_vocab_size
    trainer = L.Trainer(
        precision=precision,
        max_steps=steps + WARMUP,
        limit_val_batches=0,
        gradient_clip_val=1.0,
        use_distributed_sampler=False,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, dm)
    elapsed = timer.end - timer.start
    return timer.tokens / elapsed, timer.flops / elapsed


def loop_window(loss_fn, parameters, dm, steps: int, vocab: int, bf16: bool = False) -> tuple[float, float]:
    """A plain training loop; ``loss_fn(batch)`` returns the mean loss over real target tokens."""
    parameters = list(parameters)
    optimizer = torch.optim.AdamW(parameters, lr=7e-4, betas=(0.9, 0.98), weight_decay=0.0)
    scheduler = warmup_inverse_sqrt(optimizer, 4000)["scheduler"]
    tokens = flops = 0.0
    for i, batch in enumerate(dm.train_dataloader()):
        if i == steps + WARMUP:
            break
        if i == WARMUP:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # what bf16-mixed does on the CPU
            loss = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        if i >= WARMUP:
            tokens += float((~batch["tgt_pad_mask"]).sum())
            flops += training_flops(batch, vocab)
    elapsed = time.perf_counter() - start
    return tokens / elapsed, flops / elapsed


def marian(dm) -> torch.nn.Module:
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(
        vocab_size=dm.tgt_vocab_size,
        d_model=SIZES["d_model"],
        encoder_layers=SIZES["encoder_layers"],
        decoder_layers=SIZES["decoder_layers"],
        encoder_attention_heads=SIZES["heads"],
        decoder_attention_heads=SIZES["heads"],
        encoder_ffn_dim=SIZES["ffn_dim"],
        decoder_ffn_dim=SIZES["ffn_dim"],
        dropout=SIZES["dropout"],
        attention_dropout=0.0,  # as zoo.Transformer: dropout on sub-layer outputs and embeddings only
        activation_dropout=0.0,
        activation_function="relu",
        max_position_embeddings=256,
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=dm.special_ids.pad,
        eos_token_id=dm.special_ids.eos,
        decoder_start_token_id=dm.special_ids.bos,
        forced_eos_token_id=None,
    )
    return MarianMTModel(config)


def marian_loss(model, batch) -> torch.Tensor:
    logits = model(
        input_ids=batch["src"],
        attention_mask=(~batch["src_pad_mask"]).long(),
        decoder_input_ids=batch["tgt_in"],
        decoder_attention_mask=(~batch["tgt_pad_mask"]).long(),
    ).logits
    real = ~batch["tgt_pad_mask"]
    return F.cross_entropy(logits[real], batch["tgt_out"][real], label_smoothing=0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--no-marian", action="store_true", help="skip Hugging Face Marian")
    parser.add_argument("--no-bf16", action="store_true", help="skip Lightning's bf16-mixed")
    args = parser.parse_args()
    rounds, steps = (2, 4) if args.quick else (5, 15)
    torch.manual_seed(0)
    dm = TranslationDataModule(
        "multi30k", pair="en-fr", tokenizer="bpe", vocab_size=8000, joint_vocab=True, max_tokens=4000
    )
    dm.setup("fit")
    vocab = dm.tgt_vocab_size
    common = dict(
        src_vocab_size=dm.src_vocab_size,
        tgt_vocab_size=vocab,
        src_tokenizer=dm.src_tokenizer_json,
        tgt_tokenizer=dm.tgt_tokenizer_json,
        label_smoothing=0.1,
        **SIZES,
    )
    lit_model, bf16_model, plain_model = Transformer(**common), Transformer(**common), Transformer(**common)
    bf16_model.load_state_dict(lit_model.state_dict())
    plain_model.load_state_dict(lit_model.state_dict())
    plain_model.train()
    bf16_plain_model = Transformer(**common)
    bf16_plain_model.load_state_dict(lit_model.state_dict())
    bf16_plain_model.train()

    def plain_loss(batch):
        total, count = plain_model.sequence_loss(batch)
        return total / count

    def bf16_plain_loss(batch):
        total, count = bf16_plain_model.sequence_loss(batch)
        return total / count

    contenders = {
        "lightning": lambda: lightning_window(lit_model, dm, steps),
        "lightning bf16": lambda: lightning_window(bf16_model, dm, steps, "bf16-mixed"),
        "plain": lambda: loop_window(plain_loss, plain_model.parameters(), dm, steps, vocab),
        "plain bf16": lambda: loop_window(bf16_plain_loss, bf16_plain_model.parameters(), dm, steps, vocab, True),
    }
    if args.no_bf16:
        del contenders["lightning bf16"], contenders["plain bf16"]
    if not args.no_marian:
        hf_model = marian(dm).train()
        contenders["marian"] = lambda: loop_window(
            lambda b: marian_loss(hf_model, b), hf_model.parameters(), dm, steps, vocab
        )

    peaks, rows = [], []
    for r in range(rounds):
        peaks.append(matmul_peak_gflops())
        names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        row = {name: contenders[name]() for name in names}
        rows.append(row)
        print(
            f"round {r}: peak {peaks[-1]:6.1f} GFLOP/s  " + "  ".join(f"{n} {row[n][0]:7.0f} tok/s" for n in contenders)
        )

    peak = statistics.median(peaks)
    print()
    print(f"fp32 matmul peak (median of rounds): {peak:.1f} GFLOP/s")
    print(f"{'contender':<16}{'median tok/s':>14}{'GFLOP/s':>10}{'MFU':>8}{'ratio to plain':>16}")
    summary = {"benchmark": "transformer_throughput", "peak_gflops": round(peak, 1), "quick": args.quick}
    for name in contenders:
        tok = statistics.median(row[name][0] for row in rows)
        gflops = statistics.median(row[name][1] for row in rows) / 1e9
        ratio = statistics.median(row[name][0] / row["plain"][0] for row in rows)
        print(f"{name:<16}{tok:>14.0f}{gflops:>10.1f}{gflops / peak:>8.1%}{ratio:>16.3f}")
        key = name.replace(" ", "_")
        summary[f"{key}_tokens_per_s"] = round(tok)
        summary[f"{key}_mfu"] = round(gflops / peak, 3)
        summary[f"{key}_to_plain"] = round(ratio, 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
