"""Every shipped config trains and decodes with bf16-mixed precision (what users run on GPUs), here on the CPU."""

import math

import pytest
import torch

from tests.conftest import REPO, shipped_config_data
from zoo.cli import ZooCLI

CONFIGS = sorted((REPO / "configs").glob("*/*.yaml"))
TINY = {  # the configs' own sizes would take minutes in bf16 on a CPU
    "zoo.CharRNN": ["--model.init_args.hidden_size", "16", "--model.init_args.num_layers", "1"],
    "zoo.TransformerLM": ["--model.init_args.d_model", "16", "--model.init_args.heads", "2"]
    + ["--model.init_args.layers", "1", "--model.init_args.ffn_dim", "32"],
    "zoo.Seq2Seq": ["--model.init_args.embedding_dim", "16", "--model.init_args.hidden_size", "16"],
    "zoo.Transformer": ["--model.init_args.d_model", "16", "--model.init_args.heads", "2", "--model.init_args.ffn_dim"]
    + ["32", "--model.init_args.encoder_layers", "1", "--model.init_args.decoder_layers", "1"],
}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_every_shipped_config_trains_and_decodes_in_bf16_mixed(
    config, small_corpus, toy_folder, translator_checkpoint, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    model_class, data = shipped_config_data(config, toy_folder, small_corpus, translator_checkpoint, tmp_path)
    sizes = [] if "--pretrained" in data else TINY[model_class]  # a fine-tuned model keeps its parent's sizes
    translation = model_class in ("zoo.Seq2Seq", "zoo.Transformer")
    run = ["--trainer.precision", "bf16-mixed", "--trainer.max_steps", "3", "--trainer.val_check_interval", "3"]
    run += ["--trainer.check_val_every_n_epoch", "1"]  # validate within these 3 steps, whatever the config says
    run += ["--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"]
    run += ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "logs"]
    cli = ZooCLI(["--config", str(config), *data, *sizes, *run], run=False)
    cli.trainer.fit(cli.model, cli.datamodule)

    metrics = cli.trainer.callback_metrics
    assert math.isfinite(metrics["train/loss_step"]) and math.isfinite(metrics["val/loss"])
    model = cli.model.eval()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # decoding as a bf16 validation or serving step runs it
        if translation:
            assert "val/bleu" in metrics  # validation decoded greedily under bf16
            (beams,) = model.translate_n_best(["a small test"], strategy="beam", beam_size=2, n_best=2)
            assert len(beams) == 2 and all(isinstance(text, str) and math.isfinite(s) for text, s in beams)
        else:
            assert len(model.generate_text("ROMEO:", 20, strategy="sample", seed=0)) == 20


def test_lstm_models_run_under_cpu_bf16_autocast():
    """oneDNN has no bf16 LSTM under autocast; zoo.modules.recurrent runs it in fp32 there (packed encoder too)."""
    from datamodules.collate import collate_pairs
    from zoo import Seq2Seq

    model = Seq2Seq(12, 12, embedding_dim=8, hidden_size=8, cell="lstm", attention="general", bidirectional=True)
    batch = collate_pairs([{"src_ids": [4, 5, 6], "tgt_ids": [7, 8]}, {"src_ids": [9], "tgt_ids": [5, 6, 7]}])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model.sequence_loss(batch)
        loss.backward()
        (best,) = model.generate(batch["src"], batch["src_pad_mask"], strategy="beam", beam_size=2, max_len=4)[0]
    assert math.isfinite(loss.item()) and len(best.tokens) <= 4


def test_training_under_cpu_autocast_attends_in_fp32_and_decoding_in_bf16():
    """torch's CPU flash-attention backward is 8x slower in bf16, so training attends in fp32; autocast must not
    cast the inputs back (it did: scaled_dot_product_attention is on its bf16 list). Decoding keeps bf16."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from datamodules.collate import collate_pairs
    from zoo import Transformer

    class AttentionInputs(TorchDispatchMode):
        """The dtypes the attention kernels receive, as the dispatcher hands them over (after autocast)."""

        def __init__(self):
            super().__init__()
            self.dtypes = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if "scaled_dot_product" in func.__name__ and "backward" not in func.__name__:
                self.dtypes.add(args[0].dtype)
            return func(*args, **(kwargs or {}))

    model = Transformer(12, 12, d_model=16, heads=2, encoder_layers=1, decoder_layers=1, ffn_dim=32)
    batch = collate_pairs([{"src_ids": [4, 5, 6], "tgt_ids": [7, 8]}, {"src_ids": [9], "tgt_ids": [5, 6, 7]}])
    training, decoding = AttentionInputs(), AttentionInputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with training:
            total, count = model.sequence_loss(batch)
        (total / count).backward()
        with torch.no_grad(), decoding:
            model.generate(batch["src"], batch["src_pad_mask"], strategy="greedy", max_len=3)
    assert training.dtypes == {torch.float32}
    assert decoding.dtypes == {torch.bfloat16}
