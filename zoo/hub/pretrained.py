"""The pretrained registry, and where the files of a pretrained spec (a registered name, a local path, a URL or
a Hugging Face Hub id) lie on this machine: ``locate`` fetches what is missing; ``zoo.load_pretrained``
(zoo/hub/loading.py) loads what it finds.

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
from dataclasses import dataclass
from pathlib import Path

from datamodules.sources import CorpusError, cache_dir, download, url_cache_path
from zoo.hub.bundles import CHECKSUMS, CONFIG, WEIGHTS, sha256_of
from zoo.hub.checkpoints import CheckpointError

PACKAGE_DIR = Path(__file__).resolve().parent / "pretrained_bundles"
URL_SCHEMES = ("http://", "https://", "file://")
HUB_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # owner/name, as the Hugging Face Hub spells it


def registry() -> dict[str, dict]:
    return json.loads((PACKAGE_DIR / "registry.json").read_text(encoding="utf-8"))


@dataclass
class Located:
    """Where a pretrained spec's files lie on this machine, and how to check them."""

    path: Path  # a bundle folder or a .ckpt file
    listing_sha256: str | None = None  # a registry's digest of the bundle's SHA256SUMS
    class_path: str | None = None  # the class a registry says the bundle holds
    discard_if_damaged: bool = False  # a download of ours: remove it when it fails to load, to fetch it again


def locate(spec: str | Path, known: dict[str, dict] | None = None) -> Located:
    """``spec``: a registered name, a bundle folder, a ``.ckpt`` file, an http(s)/file URL of either, or the id
    of a Hugging Face Hub repository holding a bundle ("owner/name"), fetched into the cache when needed.
    ``known`` replaces the packaged registry (for private registries and tests)."""
    known = registry() if known is None else known
    spec = str(spec)
    if spec in known:
        return _registered(spec, known[spec])
    if spec.startswith(URL_SCHEMES):
        return _from_url(spec)
    path = Path(spec).expanduser()
    if not path.exists() and path.suffix != ".ckpt" and HUB_REPO_ID.fullmatch(spec):
        return Located(_hub_snapshot(spec))
    if path.exists() or path.suffix == ".ckpt" or "/" in spec:
        return Located(path)
    raise CheckpointError(
        f"unknown pretrained model {spec!r}: not a registered name, an existing path or a URL. "
        f"Known names: {', '.join(sorted(known)) or '(none)'}."
    )


def _registered(name: str, entry: dict) -> Located:
    """A registered bundle: shipped in the package, or downloaded into the cache (again when the registry lists
    another version than the cached one). Its files are checked once, on loading, through SHA256SUMS."""
    location, listing = entry["url"], entry["files"][CHECKSUMS]
    if location.startswith("package:"):
        return Located(PACKAGE_DIR / location.removeprefix("package:"), listing, entry["class_path"])
    folder = cache_dir() / "pretrained" / name
    if not (folder / CHECKSUMS).is_file() or sha256_of(folder / CHECKSUMS) != listing:
        for filename, sha256 in entry["files"].items():
            _download(f"{location.rstrip('/')}/{filename}", folder / filename, sha256)
    return Located(folder, listing, entry["class_path"], discard_if_damaged=True)


def _from_url(url: str) -> Located:
    if url.endswith(".ckpt"):
        target = url_cache_path(url)
        if not target.is_file():
            _download(url, target, None)
        return Located(target)
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
            pass  # an older bundle without one: loading refuses it and says how to opt in
    return Located(folder, discard_if_damaged=True)


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


def list_pretrained(known: dict[str, dict] | None = None) -> list[dict]:
    """The zoo, one dict per registered model: name, family, data, metric, size in MB (of its files), description."""
    rows = []
    for name, entry in (registry() if known is None else known).items():
        location = entry["url"]
        if location.startswith("package:"):
            folder = PACKAGE_DIR / location.removeprefix("package:")
            size = sum((folder / filename).stat().st_size for filename in entry["files"])
        else:
            size = entry.get("size_bytes", 0)
        rows.append(
            {
                "name": name,
                "family": entry.get("family", entry["class_path"].rpartition(".")[2]),
                "data": entry.get("data", ""),
                "metric": entry.get("metric", ""),
                "size_mb": round(size / 1e6, 1),
                "description": entry["description"],
            }
        )
    return rows
