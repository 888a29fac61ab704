"""Real 2-process DDP `zoo fit` runs on the CPU (gloo): what each rank saw, and metrics equal to one process.

Each run records, per rank, the rows of every training batch and the validation metrics
(tests/batch_recorder.py). The same checkpoint is then validated by a single process on the
same validation data, which must give the same numbers.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from datamodules.char_batches import StreamBatches
from datamodules.char_datamodule import CharDataModule
from datamodules.translation_datamodule import TranslationDataModule
from tests.conftest import run_zoo, toy_pairs
from tests.wandb_records import history_rows


def processes(n: int) -> list[str]:
    """`zoo fit` flags for ``n`` CPU processes on this machine (DDP over gloo), or one without DDP."""
    return [
        "--trainer.strategy",
        "ddp" if n > 1 else "auto",
        "--trainer.devices",
        str(n),
        "--trainer.accelerator",
        "cpu",
    ]


DDP, ONE = processes(2), processes(1)


def zoo(*args, cwd):
    done = run_zoo(*args, cwd=cwd)
    assert done.returncode == 0, done.stderr[-4000:]


def write_config(path, record_dir, model, data, callbacks=(), checkpoint=None, **trainer) -> str:
    """A run recording what each rank trained on into ``record_dir``; ``checkpoint``: more ModelCheckpoint options."""
    config = {
        "seed_everything": 3,
        "trainer": {
            "max_epochs": 1,
            "logger": False,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "use_distributed_sampler": False,
            "callbacks": [
                *callbacks,
                {"class_path": "tests.batch_recorder.RecordBatches", "init_args": {"folder": str(record_dir)}},
                {
                    "class_path": "callbacks.ModelCheckpoint",
                    "init_args": {"dirpath": str(path.parent / "ckpt"), "save_last": True, **(checkpoint or {})},
                },
            ],
            **trainer,
        },
        "model": model,
        "data": data,
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def records(folder) -> list[dict]:
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(len(list(folder.glob("rank*.json"))))]


def assert_same_metrics(ddp: dict, single: dict) -> None:
    assert ddp.keys() == single.keys() and ddp
    for name in ddp:
        assert ddp[name] == pytest.approx(single[name], rel=1e-5), name


def char_rnn_config(tmp_path, run: str, corpus, mode: str, seq_len: int, batch_size: int, checkpoint=None) -> str:
    """A tiny CharRNN run recording into ``tmp_path/run``, with the hidden-state handling of its mode."""
    model = {"class_path": "zoo.CharRNN", "init_args": {"hidden_size": 16, "num_layers": 1}}
    data = {
        "class_path": "datamodules.CharDataModule",
        "init_args": {
            "source": str(corpus),
            "mode": mode,
            "seq_len": seq_len,
            "batch_size": batch_size,
            "val_fraction": 0.5,
        },
    }
    hidden = [
        {
            "class_path": "callbacks.HiddenStateCallback",
            "init_args": {"mode": "preserve" if mode == "stateful" else "reset"},
        }
    ]
    return write_config(tmp_path / f"{run}.yaml", tmp_path / run, model, data, hidden, checkpoint)


def test_stateful_char_rnn_under_ddp(tmp_path, small_corpus):
    streams, seq_len = 10, 16  # per rank
    zoo(
        "fit",
        "--config",
        char_rnn_config(tmp_path, "fit", small_corpus, "stateful", seq_len, streams),
        *DDP,
        cwd=tmp_path,
    )
    ranks = records(tmp_path / "fit")
    assert [r["world_size"] for r in ranks] == [2, 2]

    # Each rank trained on exactly its own contiguous streams, in order: rank r owns streams
    # r*B .. r*B+B-1 of 2*B, so no two ranks read the same text.
    dm = CharDataModule(str(small_corpus), mode="stateful", seq_len=seq_len, batch_size=streams, val_fraction=0.5)
    dm.setup("fit")
    for rank, record in enumerate(ranks):
        expected = [inputs.tolist() for inputs, _ in StreamBatches(dm.train_tokens, streams, seq_len, rank, 2)]
        assert [b["rows"] for b in record["batches"]] == expected
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) > 0

    # Validation: all ranks logged the same numbers, equal to one process reading the same
    # 2*B streams (batch_size 2*B).
    assert ranks[0]["val"] == ranks[1]["val"]
    last = str(tmp_path / "ckpt" / "last.ckpt")
    config_one = char_rnn_config(tmp_path, "one", small_corpus, "stateful", seq_len, 2 * streams)
    zoo("validate", "--config", config_one, *ONE, "--ckpt_path", last, cwd=tmp_path)
    assert_same_metrics(ranks[0]["val"], records(tmp_path / "one")[0]["val"])


@pytest.mark.slow  # ~13 s; DDP char windows also run in the slow resume-on-another-world tests
def test_stateless_char_windows_under_ddp(tmp_path, small_corpus):
    seq_len, batch_size = 16, 16
    zoo(
        "fit",
        "--config",
        char_rnn_config(tmp_path, "fit", small_corpus, "stateless", seq_len, batch_size),
        *DDP,
        cwd=tmp_path,
    )
    ranks = records(tmp_path / "fit")

    # The ranks' windows are disjoint and equal in number; only the < 2 left over are skipped.
    dm = CharDataModule(str(small_corpus), mode="stateless", seq_len=seq_len, batch_size=batch_size, val_fraction=0.5)
    dm.setup("fit")
    items = [r["epoch_indices"][0] for r in ranks]  # (slot, offset) pairs
    slots = [{k for k, _ in rank_items} for rank_items in items]
    assert len(items[0]) == len(items[1]) == len(slots[0]) == len(slots[1]) == len(dm.train_set) // 2
    assert not slots[0] & slots[1]
    # And each rank trained on exactly those windows, in that order.
    tokens, T = dm.train_tokens.tolist(), seq_len
    for record, rank_items in zip(ranks, items):
        rows = [row for batch in record["batches"] for row in batch["rows"]]
        assert rows == [tokens[min(k * T + o, len(tokens) - T - 1) :][:T] for k, o in rank_items]

    # Validation keeps every window once (no padding duplicates): the same loss as one process.
    assert ranks[0]["val"] == ranks[1]["val"]
    last = str(tmp_path / "ckpt" / "last.ckpt")
    config_one = char_rnn_config(tmp_path, "one", small_corpus, "stateless", seq_len, batch_size)
    zoo("validate", "--config", config_one, *ONE, "--ckpt_path", last, cwd=tmp_path)
    assert_same_metrics(ranks[0]["val"], records(tmp_path / "one")[0]["val"])


def unique_toy_corpus(folder: Path) -> Path:
    """Like conftest's toy corpus, with every source sentence distinct (numbered), so overlap is visible."""
    folder.mkdir()
    for split, n in (("train", 300), ("val", 30)):
        src, tgt = toy_pairs(n, seed=len(split))
        (folder / f"{split}.en").write_text("\n".join(f"{s} {i}" for i, s in enumerate(src)) + "\n")
        (folder / f"{split}.xx").write_text("\n".join(f"{t} {i}" for i, t in enumerate(tgt)) + "\n")
    for lang in ("en", "xx"):
        (folder / f"test.{lang}").write_text((folder / f"val.{lang}").read_text())
    return folder


@pytest.mark.slow  # ~21 s; DDP stays in the default run with the stateful char-RNN (and real Multi30k under DDP is slow)
def test_bucketed_transformer_under_ddp(tmp_path):
    corpus = unique_toy_corpus(tmp_path / "toy")
    max_tokens = 240
    model = {
        "class_path": "zoo.Transformer",
        "init_args": {
            "d_model": 16,
            "heads": 2,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "ffn_dim": 32,
            "warmup_steps": 2,
        },
    }
    data = {
        "class_path": "datamodules.TranslationDataModule",
        "init_args": {"source": str(corpus), "pair": "en-xx", "vocab_size": 80, "max_tokens": max_tokens},
    }
    config = write_config(tmp_path / "t.yaml", tmp_path / "fit", model, data)
    zoo("fit", "--config", config, *DDP, cwd=tmp_path)
    ranks = records(tmp_path / "fit")

    # Disjoint, balanced, within the budget per rank.
    seen = [{tuple(row) for b in r["batches"] for row in b["rows"]} for r in ranks]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert sum(len(b["rows"]) for r in ranks for b in r["batches"]) == len(seen[0]) + len(seen[1])  # no repeats
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"])
    assert all(b["cost"] <= max_tokens for r in ranks for b in r["batches"])
    assert len(seen[0]) + len(seen[1]) > 0.8 * 300  # at most the few batches trimmed for balance are missing

    # Validation loss and BLEU (torchmetrics, every batch kept) equal one process's on the same data.
    assert ranks[0]["val"] == ranks[1]["val"]
    last = str(tmp_path / "ckpt" / "last.ckpt")
    config_one = write_config(tmp_path / "t_one.yaml", tmp_path / "one", model, data)
    zoo("validate", "--config", config_one, *ONE, "--ckpt_path", last, cwd=tmp_path)
    single = records(tmp_path / "one")[0]["val"]
    assert_same_metrics(ranks[0]["val"], single)
    assert {"val/loss", "val/bleu"} <= single.keys()
    assert torch.isfinite(torch.tensor(single["val/loss"]))


@pytest.mark.slow  # 75-90 s, a sixth of the default run: `make test-slow`
def test_transformer_on_multi30k_under_ddp(tmp_path, shared_data):
    """The real corpus (duplicate sentences included), W&B logging and checkpointing as in a shipped config."""
    max_tokens = 4000
    model = {
        "class_path": "zoo.Transformer",
        "init_args": {
            "d_model": 32,
            "heads": 2,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "ffn_dim": 64,
            "warmup_steps": 10,
        },
    }
    data = {
        "class_path": "datamodules.TranslationDataModule",
        "init_args": {"source": "multi30k", "pair": "en-fr", "vocab_size": 2000, "max_tokens": max_tokens},
    }
    wandb = {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"project": "seq-zoo", "save_dir": str(tmp_path / "runs")},
    }
    saves = tmp_path / "saves.log"
    plugins = [{"class_path": "tests.batch_recorder.RecordSaves", "init_args": {"log": str(saves)}}]
    config = write_config(tmp_path / "t.yaml", tmp_path / "fit", model, data, logger=wandb, plugins=plugins)
    zoo("fit", "--config", config, *DDP, cwd=tmp_path)
    ranks = records(tmp_path / "fit")

    # Every training example at most once over both ranks (Multi30k repeats some sentences, so count
    # them as a multiset), the same number of batches per rank, each within the budget.
    dm = TranslationDataModule("multi30k", "en-fr", vocab_size=2000, max_tokens=max_tokens)
    dm.setup("fit")
    available = Counter((*ids, dm.special_ids.eos) for ids in dm.datasets["train"]["src_ids"])
    seen = Counter(tuple(row) for r in ranks for b in r["batches"] for row in b["rows"])
    assert not seen - available
    assert seen.total() > 0.95 * len(dm.datasets["train"])
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) > 0
    assert all(b["cost"] <= max_tokens for r in ranks for b in r["batches"])

    # Checkpoints: written by one process, each file once.
    lines = [line.split() for line in saves.read_text().splitlines()]
    assert len({pid for pid, _ in lines}) == 1
    assert len({path for _, path in lines}) == len(lines) == 2  # epoch=0-step=N.ckpt and last.ckpt

    # W&B: one run (rank 0's), whose logged validation metrics are the ranks' values.
    run_files = list((tmp_path / "runs" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 1
    logged = [row for row in history_rows(run_files[0]) if "val/bleu" in row]
    assert logged and logged[-1]["val/bleu"] == pytest.approx(ranks[0]["val"]["val/bleu"])

    # Validation loss and BLEU over all 1,014 sentences equal one process's.
    assert ranks[0]["val"] == ranks[1]["val"]
    config_one = write_config(tmp_path / "t_one.yaml", tmp_path / "one", model, data)
    zoo("validate", "--config", config_one, *ONE, "--ckpt_path", str(tmp_path / "ckpt" / "last.ckpt"), cwd=tmp_path)
    assert_same_metrics(ranks[0]["val"], records(tmp_path / "one")[0]["val"])
