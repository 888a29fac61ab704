"""The measured sections of a model card, each score beside the one command that reproduces it, measured when
the bundle is written on the weights as the bundle stores them (float16 rounding included):

  - every model: its score on its own data (``scores_section``);
  - a fine-tuned model: its parent (name, digest), both datasets, and the scores of parent and child on each
    (``lineage_section``).

A translator is scored by SacreBLEU on the test split with its test beam (as `zoo test` reports); a language
model by validation nats per character (as `zoo validate` reports). A score that cannot be measured (the data is
not at hand, the parent is gone or cannot read the new text's characters) says why instead.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch

from callbacks.hidden_state import HiddenStateCallback
from zoo.hub.loading import load_model, load_pretrained
from zoo.tasks.fine_tuning import lineage


def card_scores(path: str | Path, name: str, dtype: str = "float32") -> str:
    """The measured card sections of the checkpoint at ``path``, exported with weights in ``dtype`` under the
    name ``name`` (what the commands pass to --pretrained: a registry name or the bundle's folder)."""
    model = load_model(path)
    stored = getattr(torch, dtype)  # score what loading the bundle gives: its weights rounded to ``dtype``
    model.load_state_dict(
        {k: v.to(stored).float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    )
    # (not model.to(dtype).float(): torchmetrics' metrics ignore .float() and would accumulate in float16)
    print(f"scoring {path} for its model card ...", file=sys.stderr)
    if getattr(model, "parent", None):
        print(f"... and its parent, {model.parent['name']}, on both datasets", file=sys.stderr)
        return "\n" + lineage_section(model, model.training_data, name)
    return "\n" + scores_section(model, model.training_data, name)


def scores_section(model: L.LightningModule, data: dict | None, name: str) -> str:
    """Markdown: the model's score on its own data and the command that measures it."""
    if not data:
        return "## Scores\n\nNot measured: the checkpoint does not record its training data.\n"
    return (
        f"## Scores (of these weights)\n\n| {metric_name(model)} on | value |\n|---|---|\n"
        f"| {describe(data)} | {_score(model, data)} |\n\n"
        f"Reproduce: {reproduce(name, model, data)}\n"
    )


def lineage_section(model: L.LightningModule, fine_tuning_data: dict | None, name: str) -> str:
    """Markdown: where ``model`` (which has a ``parent``) came from, and the before/after scores."""
    parent_record = model.parent
    parent, missing = _parent_model(parent_record)
    datasets = {"parent's data": parent_record.get("data"), "fine-tuning data": fine_tuning_data}
    rows, commands = [], []
    for label, data in datasets.items():
        if not data:
            rows.append(f"| {label}: not recorded | - | - |")
            continue
        before = _score(parent, data) if parent is not None else missing
        rows.append(f"| {label}: {describe(data, mixed=False)} | {before} | {_score(model, data)} |")
        commands += [
            f"- parent on the {label}: {reproduce(parent_record.get('name'), model, data)}",
            f"- this model on the {label}: {reproduce(name, model, data)}",
        ]
    digest = parent_record.get("sha256") or "not recorded"
    return (
        f"## Fine-tuned from {parent_record.get('name')}\n\n"
        f"Parent: `{parent_record.get('name')}` ({parent_record.get('class_path')}), files digest (sha256 of its "
        f"SHA256SUMS, or of the checkpoint file) `{digest}`. Parent's training data: {describe(parent_record.get('data'))}. "
        f"Fine-tuning data: {describe(fine_tuning_data)}.\n\n"
        f"| {metric_name(model)} on | parent (before) | this model (after) |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nReproduce each score:\n\n"
        + "\n".join(commands)
        + "\n"
    )


# Scores are measured in fp32, and `zoo fit`/`zoo test` default to bf16 where the CPU has it: the command says fp32.
FP32_RUN = "--trainer.precision 32-true --trainer.logger false"


def metric_name(model: L.LightningModule) -> str:
    if hasattr(model, "tokenizers"):
        beam = model.hparams.get("test_beam_size", 1)
        return f"test BLEU ({'greedy' if beam == 1 else f'beam {beam}'}, SacreBLEU)"
    return "val nats/char"


def reproduce(spec: str, model: L.LightningModule, data: dict | None) -> str:
    """The command that measures ``spec``'s score on ``data``, as the card gives it."""
    translation, data = hasattr(model, "tokenizers"), data or {}
    flags = f"--data {_datamodule_path(model, data)} --data.init_args.source {data.get('source')}"
    if translation:
        return f"`zoo test --pretrained {spec} {flags} --data.init_args.pair {data.get('pair')} {FP32_RUN}`"
    shape = f"--data.init_args.mode {data.get('mode')} --data.init_args.seq_len {data.get('seq_len')} --data.init_args.batch_size {data.get('batch_size')}"
    return f"`zoo validate --pretrained {spec} {flags} {shape} {FP32_RUN}`"


def describe(data: dict | None, mixed: bool = True) -> str:
    if not data:
        return "not recorded"
    text = f"{data.get('source')}" + (f" {data['pair']}" if data.get("pair") else "")
    if mixed and data.get("mix_source"):
        text += f", mixed with {data['mix_source']} ({data.get('mix_share')} of the training pairs)"
    return text


def _parent_model(record: dict) -> tuple[L.LightningModule | None, str]:
    """The parent, loaded by its recorded name, if it is still the same files; else None and why not."""
    try:
        parent = load_pretrained(record["name"])
    except (OSError, ValueError) as error:
        return None, f"not measured: the parent does not load ({str(error).split('. Fix')[0]})"
    if record.get("sha256") and lineage(parent)["sha256"] != record["sha256"]:
        return None, "not measured: the model under the parent's name now has other files than the parent had"
    return parent, ""


def _score(model: L.LightningModule, data: dict[str, Any]) -> str:
    """The model's score on ``data`` (a DataModule's arguments, as checkpoints keep them), read with its own
    tokenizers or vocabulary."""
    arguments = {k: v for k, v in data.items() if not k.startswith("_") and k not in ("mix_source", "mix_share")}
    translation = hasattr(model, "tokenizers")
    module, _, name = _datamodule_path(model, data).rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if translation:
        arguments["tokenizers"] = model.tokenizers
    else:
        arguments.update(vocab=model.vocab.chars, extend_vocab=False)
    try:
        datamodule = cls(**arguments)
        carried = [HiddenStateCallback.for_data(data.get("mode"))] if hasattr(model, "hidden_state") else []
        trainer = L.Trainer(
            devices=1,
            callbacks=carried,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )
        if translation:
            return f"{trainer.test(model, datamodule, verbose=False)[0]['test/bleu']:.2f}"
        return f"{trainer.validate(model, datamodule, verbose=False)[0]['val/loss']:.4f}"
    except (ValueError, OSError) as error:  # data not at hand, or a parent that cannot read the new characters
        return f"not measured: {str(error).split('. Fix')[0].split(': ')[0]}"


def _datamodule_path(model: L.LightningModule, data: dict) -> str:
    """The DataModule class the data's arguments are for (files from before it was kept: the family's)."""
    translation = hasattr(model, "tokenizers")
    return data.get("_class_path") or (
        "datamodules.TranslationDataModule" if translation else "datamodules.CharDataModule"
    )
