"""``zoo.load_pretrained``: a ready model (eval mode) from a registered name, a local path or a URL.

The registry, ``zoo/hub/pretrained_bundles/registry.json``, maps a name to a bundle (see zoo/hub/bundles.py):
its model class, a description, the sha256 of each of its files, and where they live:
``package:<folder>`` for a bundle shipped inside this package (usable offline right after
install), or the URL of a folder holding the files. Downloaded files go to
``$ZOO_CACHE_DIR/pretrained/<name>/``, are written atomically and verified by hash: a
partial or corrupt download never stays behind. Nothing is unpickled: bundles are
safetensors + JSON, and ``.ckpt`` files load with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import lightning as L

from datamodules.sources import CorpusError, cache_dir, download, url_cache_path
from zoo.hub.bundles import CHECKSUMS, CONFIG, WEIGHTS, load_bundle, sha256_of
from zoo.hub.checkpoints import CheckpointError, load_model, public_class_path

PACKAGE_DIR = Path(__file__).resolve().parent / "pretrained_bundles"
URL_SCHEMES = ("http://", "https://", "file://")
HUB_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # owner/name, as the Hugging Face Hub spells it


def registry() -> dict[str, dict]:
    return json.loads((PACKAGE_DIR / "registry.json").read_text(encoding="utf-8"))


def load_pretrained(spec: str | Path, known: dict[str, dict] | None = None) -> L.LightningModule:
    """``spec``: a registered name, a bundle folder, a ``.ckpt`` file, an http(s)/file URL of either, or the id
    of a Hugging Face Hub repository holding a bundle ("owner/name"). ``known`` replaces the packaged registry
    (for private registries and tests)."""
    known = registry() if known is None else known
    spec = str(spec)
    if spec in known:
        return _load_registered(spec, known[spec])
    if spec.startswith(URL_SCHEMES):
        return _load_url(spec)
    path = Path(spec).expanduser()
    if not path.exists() and path.suffix != ".ckpt" and HUB_REPO_ID.fullmatch(spec):
        return load_bundle(_hub_snapshot(spec))
    if path.exists() or path.suffix == ".ckpt" or "/" in spec:
        return load_local(path)
    raise CheckpointError(
        f"unknown pretrained model {spec!r}: not a registered name, an existing path or a URL. "
        f"Known names: {', '.join(sorted(known)) or '(none)'}."
    )


def load_either(checkpoint: str | None, pretrained: str | None) -> L.LightningModule:
    """The model of a command's ``--checkpoint`` (a file or bundle folder) or else its ``--pretrained``."""
    return load_local(checkpoint) if checkpoint else load_pretrained(pretrained)


def load_for_command(checkpoint: str | None, pretrained: str | None, needs: str, refusal: str) -> L.LightningModule:
    """For the inference commands: the model of ``--checkpoint`` or ``--pretrained``, which must have
    the method ``needs``; otherwise a CheckpointError "<source> holds a <Class>, which <refusal>"."""
    model = load_either(checkpoint, pretrained)
    if not hasattr(model, needs):
        raise CheckpointError(f"{checkpoint or pretrained} holds a {type(model).__name__}, which {refusal}")
    return model


def load_local(path: str | Path) -> L.LightningModule:
    """A bundle folder or a `zoo fit` checkpoint file."""
    path = Path(path).expanduser()
    return load_bundle(path) if path.is_dir() else load_model(path)


def _load_registered(name: str, entry: dict) -> L.LightningModule:
    location = entry["url"]
    if location.startswith("package:"):
        folder = PACKAGE_DIR / location.removeprefix("package:")
        for filename, sha256 in entry["files"].items():
            if not (folder / filename).is_file() or sha256_of(folder / filename) != sha256:
                raise CheckpointError(f"the packaged bundle {name!r} is damaged ({filename}). Fix: reinstall seq-zoo.")
    else:
        folder = cache_dir() / "pretrained" / name
        for filename, sha256 in entry["files"].items():
            target = folder / filename
            if target.is_file() and sha256_of(target) == sha256:
                continue  # cached
            _download(f"{location.rstrip('/')}/{filename}", target, sha256)
    model = load_bundle(folder)
    actual = public_class_path(type(model))
    if actual.rpartition(".")[2] != entry["class_path"].rpartition(".")[2]:
        raise CheckpointError(f"pretrained {name!r} should be a {entry['class_path']} but its bundle holds a {actual}.")
    return model


def _load_url(url: str) -> L.LightningModule:
    if url.endswith(".ckpt"):
        target = url_cache_path(url)
        if not target.is_file():
            _download(url, target, None)
        return load_model(target)
    base = url.rstrip("/")
    folder = url_cache_path(f"{base}/{CONFIG}").parent
    if not (folder / CONFIG).is_file():
        _download(f"{base}/{CONFIG}", folder / CONFIG, None)
    tokenizers = json.loads((folder / CONFIG).read_text(encoding="utf-8")).get("tokenizers", {})
    for filename in {WEIGHTS, *tokenizers.values()}:
        if not (folder / filename).is_file():
            _download(f"{base}/{filename}", folder / filename, None)
    if not (folder / CHECKSUMS).is_file():
        try:
            download(f"{base}/{CHECKSUMS}", folder / CHECKSUMS, None)
        except CorpusError:
            pass  # an older bundle without one: load_bundle warns that it cannot be checked
    try:
        return load_bundle(folder)
    except CheckpointError:
        shutil.rmtree(folder)  # a damaged download is not kept: the next call fetches it again
        raise


def _hub_snapshot(repo_id: str) -> Path:
    """The folder of a Hub repository's files: from the local Hugging Face cache (offline, as HF_HUB_OFFLINE=1
    asks), else downloaded into it. The bundle's SHA256SUMS is checked on loading, as for any bundle."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(huggingface_hub.snapshot_download(repo_id, local_files_only=True))
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
            raise CheckpointError(
                f"{repo_id!r} is neither a local path nor a Hugging Face Hub repository in the local cache, and "
                f"HF_HUB_OFFLINE is set. Fix: check the path, or download the repository first "
                f"(huggingface-cli download {repo_id}) or unset HF_HUB_OFFLINE."
            ) from None
    try:
        return Path(huggingface_hub.snapshot_download(repo_id))
    except Exception as error:  # no network, no such repository, no access
        raise CheckpointError(
            f"{repo_id!r} is not a local path, and downloading it from the Hugging Face Hub failed ({error}). "
            f"Fix: check the path or the repository id, or the network."
        ) from error


def _download(url: str, target: Path, sha256: str | None) -> None:
    try:
        download(url, target, sha256)
    except CorpusError as error:
        raise CheckpointError(f"{error}. Fix: check the network or the URL, or pass a local bundle folder.") from error
