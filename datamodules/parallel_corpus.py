"""Parallel text: aligned (source, target) sentence pairs per split, read and checked.

``source`` is one of:
  - ``multi30k`` with a pair such as ``en-fr``: Multi30k task 1, raw files under their
    upstream names ({train,val,test_2016_flickr}.{en,fr,de}.gz), looked up in
    $ZOO_DATA_DIR/multi30k, then the cache, then downloaded (see ``sources``);
  - a folder of local files, ``<split>.<lang>`` (optionally ``.gz``), one sentence per
    line, or ``<split>.tsv`` with ``source<TAB>target`` lines;
  - ``hf:<dataset>[:<config>]``: a Hugging Face dataset (a hub name, or a local folder of
    split files) with a ``translation`` column of ``{lang: text}``; splits train,
    validation, test.
Splits are ``train``, ``val`` and ``test``. Pairs with an empty side are skipped and counted.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from datamodules.sources import CorpusError, RemoteFile, fetch

SPLITS = ("train", "val", "test")
MULTI30K_LANGUAGES = ("en", "fr", "de")
MULTI30K_FILE_STEMS = {"train": "train", "val": "val", "test": "test_2016_flickr"}
MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
MULTI30K_SHA256 = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
}


@dataclass
class ParallelText:
    src: list[str]
    tgt: list[str]
    skipped_empty: int = 0  # pairs dropped because one side was empty


def parse_pair(pair: str, known: tuple[str, ...] | None = None) -> tuple[str, str]:
    langs = pair.split("-")
    if len(langs) != 2 or not all(langs) or langs[0] == langs[1]:
        raise CorpusError(f"language pair {pair!r} is not of the form 'src-tgt' (e.g. 'en-fr').")
    if known and not set(langs) <= set(known):
        pairs = ", ".join(f"{a}-{b}" for a in known for b in known if a != b)
        raise CorpusError(f"unknown language pair {pair!r} for this corpus. Fix: use one of {pairs}.")
    return langs[0], langs[1]


def load_parallel(source: str, pair: str, split: str) -> ParallelText:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if source == "multi30k":
        src_lang, tgt_lang = parse_pair(pair, MULTI30K_LANGUAGES)
        files = [fetch(multi30k_file(split, lang)) for lang in (src_lang, tgt_lang)]
        return align(read_lines(files[0]), read_lines(files[1]), files[0], files[1])
    if source.startswith("hf:"):
        return load_hf_parallel(source[3:], pair, split)
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise CorpusError(
            f"parallel corpus {source!r} not found: not 'multi30k', not 'hf:<dataset>', and not a folder. "
            f"Fix: pass a folder holding <split>.<lang> files or <split>.tsv files."
        )
    return load_local_parallel(folder, pair, split)


def multi30k_file(split: str, lang: str) -> RemoteFile:
    name = f"{MULTI30K_FILE_STEMS[split]}.{lang}.gz"
    return RemoteFile("multi30k", name, MULTI30K_URL + name, MULTI30K_SHA256[name])


def load_local_parallel(folder: Path, pair: str, split: str) -> ParallelText:
    src_lang, tgt_lang = parse_pair(pair)
    tsv = folder / f"{split}.tsv"
    if tsv.is_file():
        lines = read_lines(tsv)
        for number, line in enumerate(lines, 1):
            if line.count("\t") != 1:
                raise CorpusError(
                    f"{tsv}, line {number}: expected 'source<TAB>target', found {line.count(chr(9))} tabs."
                )
        src, tgt = zip(*(line.split("\t") for line in lines)) if lines else ((), ())
        return align(list(src), list(tgt), tsv, tsv)
    paths = [first_existing(folder, f"{split}.{lang}") for lang in (src_lang, tgt_lang)]
    return align(read_lines(paths[0]), read_lines(paths[1]), paths[0], paths[1])


def first_existing(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise CorpusError(f"{folder} has no {stem} (or {stem}.gz, or a .tsv for the split). Fix: add the file.")


def read_lines(path: Path) -> list[str]:
    """Lines of a text file (gzip or plain), without line ends; invalid UTF-8 names file and line."""
    opener = gzip.open if path.suffix == ".gz" else open
    lines = []
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as error:
                raise CorpusError(f"{path}, line {number}: invalid UTF-8 ({error}). Fix: re-encode the file as UTF-8.")
    return lines


def align(src: list[str], tgt: list[str], src_path: Path, tgt_path: Path) -> ParallelText:
    if len(src) != len(tgt):
        raise CorpusError(
            f"parallel files differ in length: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}. "
            f"Fix: the files must be line-aligned (line i of one translates line i of the other)."
        )
    kept = [(s.strip(), t.strip()) for s, t in zip(src, tgt) if s.strip() and t.strip()]
    if not kept:
        raise CorpusError(f"{src_path} and {tgt_path} hold no pair where both sides have text.")
    return ParallelText([s for s, _ in kept], [t for _, t in kept], skipped_empty=len(src) - len(kept))


def load_hf_parallel(spec: str, pair: str, split: str) -> ParallelText:
    import datasets

    src_lang, tgt_lang = parse_pair(pair)
    path, _, config = spec.partition(":")
    hf_split = {"val": "validation"}.get(split, split)
    try:
        rows = datasets.load_dataset(path, config or None, split=hf_split)["translation"]
    except Exception as error:  # hub, network and schema errors all surface here
        raise CorpusError(
            f"Hugging Face dataset {spec!r} (split {hf_split!r}) could not be loaded: {error}. "
            f"Fix: check the name and config, the network, and that it has a 'translation' column."
        ) from error
    src = [row[src_lang] for row in rows]
    tgt = [row[tgt_lang] for row in rows]
    return align(src, tgt, Path(f"{spec}[{hf_split}].{src_lang}"), Path(f"{spec}[{hf_split}].{tgt_lang}"))
