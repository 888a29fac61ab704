"""Portable model bundles: a folder of safetensors weights, JSON config, tokenizer files and a model card.

    model.safetensors   the weights (tied matrices stored once)
    config.json         {"format", "class_path", "init_args", "tokenizers": {arg: file}, "metrics", "data"}
    tokenizer.json      the tokenizer (src_tokenizer.json / tgt_tokenizer.json when separate)
    README.md           the model card, with the Hugging Face Hub's YAML metadata (zoo/hub/model_card.py)
    SHA256SUMS          the sha256 of each file above but the card (`sha256sum -c SHA256SUMS` checks by hand)

Loading a bundle reads JSON and safetensors only: nothing is unpickled, so a bundle cannot
run code; every file is checked against SHA256SUMS first, so a damaged one is never loaded, and a
bundle without SHA256SUMS is refused (the user who trusts its files lists them with `sha256sum`).
`zoo export` writes one from a `zoo fit` checkpoint, into a new folder (or, with ``force``,
replacing one) all at once: a folder holds a whole bundle or none.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import lightning as L
import safetensors.torch
import torch

from zoo.hub.atomic_writes import atomic_folder
from zoo.hub.checkpoints import (
    CheckpointError,
    build_model,
    init_args_of,
    model_from_checkpoint,
    read_checkpoint,
    saved_class_path,
)
from zoo.hub.model_card import card_metadata, limits_section, markdown_table, render
from zoo.models.registry import model_class, public_class_path

FORMAT = "seq-zoo-bundle/1"
CONFIG, WEIGHTS, CHECKSUMS, CARD = "config.json", "model.safetensors", "SHA256SUMS", "README.md"
TOKENIZER_ARGS = ("src_tokenizer", "tgt_tokenizer")


def checkpoint_metrics(checkpoint: dict) -> dict[str, float | int | str]:
    """What the checkpoint says about its training: epoch, step, the monitored metric's best value, precision."""
    metrics: dict[str, float | int | str] = {
        "epoch": checkpoint.get("epoch", 0),
        "global_step": checkpoint.get("global_step", 0),
    }
    for key, state in checkpoint.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("monitor") and state.get("best_model_score") is not None:
            metrics[f"best {state['monitor']}"] = round(float(state["best_model_score"]), 4)
    if "precision" in checkpoint:  # (checkpoints since issue 28)
        metrics["training precision"] = checkpoint["precision"]
    if "averaged_checkpoints" in checkpoint:  # zoo.hub.checkpoint_averaging
        metrics["averaged checkpoints"] = checkpoint["averaged_checkpoints"]
    return metrics


def export_bundle(
    checkpoint_path: str | Path, out: str | Path, dtype: str = "float32", force: bool = False, card_section: str = ""
) -> Path:
    """Write the bundle of a `zoo fit` checkpoint to the folder ``out``; ``dtype`` float16 halves the weights.
    A non-empty ``out`` is refused unless ``force``, which replaces it whole (never merges into it). ``card_section``
    (Markdown) ends the model card: `zoo export` puts the measured scores there (zoo/hub/card_scores.py)."""
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype!r}")
    checkpoint = read_checkpoint(checkpoint_path)
    model = model_from_checkpoint(
        checkpoint, checkpoint_path, model_class(saved_class_path(checkpoint), checkpoint_path)
    )
    with atomic_folder(out, force) as staging:
        write_bundle_files(staging, model, checkpoint, dtype, card_section)
    return Path(out)


def write_bundle_files(
    folder: Path, model: L.LightningModule, checkpoint: dict, dtype: str, card_section: str = ""
) -> None:
    cls = type(model)
    hparams = init_args_of(checkpoint)
    tokenizers, init_args = {}, dict(hparams)
    for arg in TOKENIZER_ARGS:
        text = init_args.pop(arg, None)
        if text is not None:
            joint = text == hparams.get("src_tokenizer") == hparams.get("tgt_tokenizer")
            tokenizers[arg] = "tokenizer.json" if joint else f"{arg}.json"
            (folder / tokenizers[arg]).write_text(text, encoding="utf-8")
    config = {
        "format": FORMAT,
        "class_path": public_class_path(cls),
        "init_args": init_args,
        "tokenizers": tokenizers,
        "metrics": checkpoint_metrics(checkpoint),
        # The DataModule's arguments (source, pair, ...), which checkpoints carry since DataModules save them.
        "data": checkpoint.get("datamodule_hyper_parameters"),
        "parent": checkpoint.get("parent"),  # the model it was fine-tuned from (zoo.tasks.fine_tuning), or None
    }
    (folder / CONFIG).write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")
    model.to(getattr(torch, dtype))
    safetensors.torch.save_model(model, str(folder / WEIGHTS))
    card = model_card(config, sum(p.numel() for p in model.parameters()), dtype) + card_section
    (folder / CARD).write_text(card, encoding="utf-8")
    write_checksums(folder)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(folder: Path) -> None:
    """SHA256SUMS in `sha256sum`'s format, over every file loading reads (the model card may be edited)."""
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in (CHECKSUMS, CARD))
    lines = "".join(f"{sha256_of(folder / name)}  {name}\n" for name in files)
    (folder / CHECKSUMS).write_text(lines, encoding="utf-8")


def verify_checksums(folder: Path, listing_sha256: str | None = None) -> None:
    """Every file SHA256SUMS lists is present and unchanged, each read once; with ``listing_sha256`` (a registry's
    digest of SHA256SUMS), the listing itself too. A bundle without SHA256SUMS is refused (its files could be
    damaged unseen); the user who trusts them opts in by listing them, as the message says."""
    listing = folder / CHECKSUMS
    if not listing.is_file():
        files = " ".join(shlex.quote(p.name) for p in sorted(folder.iterdir()) if p.is_file() and p.name != CARD)
        raise CheckpointError(
            f"{folder} has no {CHECKSUMS}, so a damaged or altered file in it would go unnoticed. Fix: export it "
            f"again with `zoo export`, or, if you trust its files as they are, list them: "
            f"(cd {shlex.quote(str(folder))} && sha256sum {files} > {CHECKSUMS})"
        )
    if listing_sha256 is not None and sha256_of(listing) != listing_sha256:
        raise CheckpointError(f"{listing} is not the one its registry lists: the bundle is damaged or another version.")
    listed = {}
    for line in listing.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    for name in (CONFIG, WEIGHTS):
        if name not in listed:
            raise CheckpointError(f"{listing} does not list {name}: the bundle is damaged. Fix: export it again.")
    for name, digest in listed.items():
        path = folder / name
        if Path(name).name != name or not path.is_file():
            raise CheckpointError(f"{folder} lacks {name}, which {CHECKSUMS} lists. Fix: export or download it again.")
        if sha256_of(path) != digest:
            raise CheckpointError(
                f"{path} does not match its sha256 in {CHECKSUMS}: the file is damaged or was changed. "
                f"Fix: export or download the bundle again."
            )


def model_card(config: dict, parameters: int, dtype: str) -> str:
    name = config["class_path"].rpartition(".")[2]
    translation = "src_tokenizer" in config.get("tokenizers", {})
    body = (
        f"# {name} ({parameters / 1e6:.2f}M parameters, weights in {dtype})\n\n"
        f'A seq-zoo model bundle. Load it with `zoo.load_pretrained("<this folder>")`.\n\n'
        f"{limits_section(config.get('data'))}\n"
        f"## Training record (from the checkpoint)\n\n{markdown_table(config['metrics'], ('metric', 'value'))}\n\n"
        f"## Hyperparameters\n\n{markdown_table(config['init_args'], ('argument', 'value'))}\n"
    )
    return render(card_metadata(translation, config.get("data")), body)


def load_bundle(folder: str | Path, listing_sha256: str | None = None) -> L.LightningModule:
    """The model of a bundle folder, in eval mode, fp32, on the CPU, each file checked once against SHA256SUMS
    (and that against ``listing_sha256``, when a registry gives it)."""
    folder = Path(folder)
    for name in (CONFIG, WEIGHTS):
        if not (folder / name).is_file():
            raise CheckpointError(
                f"{folder} is not a model bundle: {name} is missing. Fix: write one with `zoo export`."
            )
    verify_checksums(folder, listing_sha256)
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"{folder / CONFIG} is not valid JSON ({error}). Fix: export the bundle again."
        ) from error
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{folder / CONFIG} has format {config.get('format')!r}, this version reads {FORMAT!r}.")
    cls = model_class(config.get("class_path"), folder / CONFIG)
    init_args = dict(config["init_args"])
    for arg, filename in config.get("tokenizers", {}).items():
        init_args[arg] = (folder / filename).read_text(encoding="utf-8")
    model = build_model(cls, init_args, folder / CONFIG)
    try:
        safetensors.torch.load_model(model, str(folder / WEIGHTS), strict=True)
    except Exception as error:  # a truncated file, or weights of another shape
        raise CheckpointError(
            f"cannot load {folder / WEIGHTS} into {cls.__name__}: {error}. Fix: export the bundle again."
        ) from error
    model.training_data, model.parent = config.get("data"), config.get("parent")  # as model_from_checkpoint sets them
    return model.eval()
