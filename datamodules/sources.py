"""Where corpora come from: built-in names, local files and URLs, resolved to a local file.

A built-in file is looked up, in order, at
  1. ``$ZOO_DATA_DIR/<name>/<upstream file name>``  (read-only: never written to),
  2. ``$ZOO_CACHE_DIR/<name>/<upstream file name>`` (default ``~/.cache/seq-zoo``),
and only then downloaded into the cache. Downloads are verified by sha256 and moved
into place only when complete, so an interrupted or corrupt download never stays behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from datamodules.file_modes import give_default_modes

GZIP_MAGIC = b"\x1f\x8b"  # the first two bytes of a gzip file: read as gzip whatever its name


def open_bytes(path: Path):
    """``path`` opened for reading bytes, decompressed when it is gzip (told by its first bytes, not its name)."""
    with open(path, "rb") as probe:
        packed = probe.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if packed else open(path, "rb")


class CorpusError(ValueError):
    """A corpus could not be found, fetched or used; the message says how to fix it."""


@dataclass(frozen=True)
class RemoteFile:
    name: str  # folder under the data and cache dirs, e.g. "tinyshakespeare"
    filename: str  # the upstream file name
    url: str
    sha256: str


BUILTIN_FILES = {
    "tinyshakespeare": RemoteFile(
        name="tinyshakespeare",
        filename="input.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
}


def data_dir() -> Path | None:
    value = os.environ.get("ZOO_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    return Path(os.environ.get("ZOO_CACHE_DIR", "~/.cache/seq-zoo")).expanduser()


def fetch(remote: RemoteFile) -> Path:
    """Return a local path holding ``remote``, downloading it into the cache if needed."""
    candidates = [d / remote.name / remote.filename for d in (data_dir(), cache_dir()) if d]
    for path in candidates:
        if path.is_file():
            return path
    looked = "\n  ".join(str(p) for p in candidates)
    fix = (
        f"Fix: copy {remote.filename} to one of those places, or set ZOO_DATA_DIR to a folder "
        f"holding {remote.name}/{remote.filename}."
    )
    if not remote.url:  # a file with no download address
        raise CorpusError(f"{remote.name}: {remote.filename} not found.\nLooked for:\n  {looked}\n{fix}")
    target = candidates[-1]
    try:
        download(remote.url, target, remote.sha256)
    except CorpusError as error:
        raise CorpusError(
            f"{remote.name}: not found locally and the download failed ({error}).\nLooked for:\n  {looked}\n{fix}"
        ) from error
    return target


def download(url: str, target: Path, sha256: str | None) -> None:
    """Download ``url`` to ``target`` atomically; with ``sha256``, refuse content that differs."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            raise CorpusError(f"sha256 mismatch for {url}: expected {sha256}, got {digest.hexdigest()}")
        give_default_modes(Path(partial))  # mkstemp's file is private; a shared cache must be readable
        os.replace(partial, target)
    except OSError as error:  # URLError, timeouts and disk errors are all OSErrors
        raise CorpusError(f"could not download {url}: {error}") from error
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def url_cache_path(url: str) -> Path:
    """Cache location of an arbitrary URL: one folder per URL, keeping the file's name."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache_dir() / "urls" / key / (Path(urllib.parse.urlparse(url).path).name or "download")
