"""Portable model bundles: a folder of safetensors weights, JSON config, tokenizer files and a model card.

    model.safetensors   the weights (tied matrices stored once)
    config.json         {"format", "class_path", "init_args", "tokenizers": {arg: file}, "metrics"}
    tokenizer.json      the tokenizer (src_tokenizer.json / tgt_tokenizer.json when separate)
    README.md           a short model card

Loading a bundle reads JSON and safetensors only: nothing is unpickled, so a bundle cannot
run code. `zoo export` writes one from a `zoo fit` checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import safetensors.torch
import torch

from zoo.checkpoints import CheckpointError, init_args_of, model_class, model_from_checkpoint, read_checkpoint

FORMAT = "seq-zoo-bundle/1"
CONFIG, WEIGHTS = "config.json", "model.safetensors"
TOKENIZER_ARGS = ("src_tokenizer", "tgt_tokenizer")


def checkpoint_metrics(checkpoint: dict) -> dict[str, float | int]:
    """What the checkpoint says about its quality: the monitored metric's best value, epoch and step."""
    metrics: dict[str, float | int] = {"epoch": checkpoint.get("epoch", 0), "global_step": checkpoint.get("global_step", 0)}
    for key, state in checkpoint.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("monitor") and state.get("best_model_score") is not None:
            metrics[f"best {state['monitor']}"] = round(float(state["best_model_score"]), 4)
    if "averaged_checkpoints" in checkpoint:  # zoo.checkpoint_averaging
        metrics["averaged checkpoints"] = checkpoint["averaged_checkpoints"]
    return metrics


def export_bundle(checkpoint_path: str | Path, out: str | Path, dtype: str = "float32") -> Path:
    """Write the bundle of a `zoo fit` checkpoint to the folder ``out``; ``dtype`` float16 halves the weights."""
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype!r}")
    checkpoint = read_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint, checkpoint_path)
    cls = type(model)
    hparams = init_args_of(checkpoint)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizers, init_args = {}, dict(hparams)
    for arg in TOKENIZER_ARGS:
        text = init_args.pop(arg, None)
        if text is not None:
            joint = text == hparams.get("src_tokenizer") == hparams.get("tgt_tokenizer")
            tokenizers[arg] = "tokenizer.json" if joint else f"{arg}.json"
            (out / tokenizers[arg]).write_text(text, encoding="utf-8")
    config = {
        "format": FORMAT,
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "init_args": init_args,
        "tokenizers": tokenizers,
        "metrics": checkpoint_metrics(checkpoint),
    }
    (out / CONFIG).write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")
    model.to(getattr(torch, dtype))
    safetensors.torch.save_model(model, str(out / WEIGHTS))
    (out / "README.md").write_text(model_card(config, sum(p.numel() for p in model.parameters()), dtype), encoding="utf-8")
    return out


def model_card(config: dict, parameters: int, dtype: str) -> str:
    name = config["class_path"].rpartition(".")[2]
    sizes = "\n".join(f"| {k} | {v} |" for k, v in config["init_args"].items() if k != "vocab")
    metrics = "\n".join(f"| {k} | {v} |" for k, v in config["metrics"].items())
    return (
        f"# {name} ({parameters / 1e6:.2f}M parameters, weights in {dtype})\n\n"
        f"A seq-zoo model bundle. Load it with `zoo.load_pretrained(\"<this folder>\")`.\n\n"
        f"## Evaluation (from the training checkpoint)\n\n| metric | value |\n|---|---|\n{metrics}\n\n"
        f"## Hyperparameters\n\n| argument | value |\n|---|---|\n{sizes}\n"
    )


def load_bundle(folder: str | Path) -> L.LightningModule:
    """The model of a bundle folder, in eval mode, fp32, on the CPU."""
    folder = Path(folder)
    for name in (CONFIG, WEIGHTS):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder} is not a model bundle: {name} is missing. Fix: write one with `zoo export`.")
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{folder / CONFIG} is not valid JSON ({error}). Fix: export the bundle again.") from error
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{folder / CONFIG} has format {config.get('format')!r}, this version reads {FORMAT!r}.")
    cls = model_class({"hyper_parameters": {"_class_path": config.get("class_path")}}, folder / CONFIG)
    init_args = dict(config["init_args"])
    for arg, filename in config.get("tokenizers", {}).items():
        init_args[arg] = (folder / filename).read_text(encoding="utf-8")
    model = cls(**init_args)
    try:
        safetensors.torch.load_model(model, str(folder / WEIGHTS), strict=True)
    except Exception as error:  # a truncated file, or weights of another shape
        raise CheckpointError(f"cannot load {folder / WEIGHTS} into {cls.__name__}: {error}. Fix: export the bundle again.") from error
    return model.eval()
