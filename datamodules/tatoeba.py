"""Tatoeba's everyday English-French sentences (built-in source ``tatoeba``), split reproducibly by English sentence.

The corpus is one file of 13,221 ``english<TAB>french`` pairs (1-5 English words; Tatoeba, CC BY 2.0 FR, as
packaged by manythings.org), looked up as ``tatoeba/en-fr.tsv`` in $ZOO_DATA_DIR and the cache like the other
built-in files. It comes without splits, and one English sentence often has several French translations, so the
split goes by English sentence: a sentence and all its translations sit in one split, never on both sides. Which
split is decided by the sentence's own hash, not by a random draw, so every machine, version and subset of the
file gives the same split. About 90% of the pairs train, 5% validate, 5% test.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from datamodules.file_modes import give_default_modes
from datamodules.sources import CorpusError, RemoteFile, cache_dir, fetch

LANGUAGES = ("en", "fr")
TATOEBA_FILE = RemoteFile(
    name="tatoeba",
    filename="en-fr.tsv",
    url="",  # no upstream file in this form: the file is found locally (ZOO_DATA_DIR or the cache) or not at all
    sha256="69a5731107a461a8e73f67c9ba43ad6d9be74517666974736678e3a32ae30544",
)
HELD_OUT_BUCKETS = {0: "val", 1: "test"}  # of 20 hash buckets: one validates, one tests, 18 train


def split_of(english: str) -> str:
    """The split an English sentence (and each of its translations) belongs to."""
    bucket = hashlib.sha256(english.strip().encode("utf-8")).digest()[0] % 20
    return HELD_OUT_BUCKETS.get(bucket, "train")


def tatoeba_files(split: str) -> dict[str, Path]:
    """``{"en": path, "fr": path}``: a split's line-aligned files, written once into the cache from the corpus."""
    corpus = fetch(TATOEBA_FILE)
    folder = cache_dir() / "tatoeba" / f"split-{TATOEBA_FILE.sha256[:12]}"
    files = {lang: folder / f"{split}.{lang}" for lang in LANGUAGES}
    if not all(path.is_file() for path in files.values()):
        write_splits(corpus, folder)
    return files


def write_splits(corpus: Path, folder: Path) -> None:
    """Every split's files, each written to a temporary file and renamed into place (a reader never sees half)."""
    lines: dict[str, dict[str, list[str]]] = {
        split: {lang: [] for lang in LANGUAGES} for split in ("train", "val", "test")
    }
    for number, line in enumerate(corpus.read_text(encoding="utf-8").splitlines(), 1):
        if line.count("\t") != 1:
            raise CorpusError(f"{corpus}, line {number}: expected 'english<TAB>french'. Fix: restore the file.")
        english, french = line.split("\t")
        split = lines[split_of(english)]
        split["en"].append(english.strip())
        split["fr"].append(french.strip())
    folder.mkdir(parents=True, exist_ok=True)
    for split, sides in lines.items():
        for lang, sentences in sides.items():
            handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{split}.{lang}.", suffix=".part")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write("".join(f"{sentence}\n" for sentence in sentences))
                give_default_modes(Path(partial))
                os.replace(partial, folder / f"{split}.{lang}")
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
