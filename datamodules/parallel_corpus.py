"""Parallel text: aligned (source, target) sentence pairs per split, read and checked.

``source`` is one of:
  - ``multi30k`` with a pair such as ``en-fr``: Multi30k task 1, raw files under their
    upstream names ({train,val,test_2016_flickr}.{en,fr,de}.gz), looked up in
    $ZOO_DATA_DIR/multi30k, then the cache, then downloaded (see ``sources``);
  - ``tatoeba`` with ``en-fr`` or ``fr-en``: Tatoeba's short everyday sentences, split by English sentence
    (see ``datamodules.tatoeba``);
  - a folder of local files, ``<split>.<lang>`` (optionally ``.gz``), one sentence per
    line, or ``<split>.tsv`` with ``source<TAB>target`` lines;
  - ``hf:<dataset>[:<config>]``: a Hugging Face dataset (a hub name, or a local folder of
    split files) with a ``translation`` column of ``{lang: text}``; splits train,
    validation, test.
Splits are ``train``, ``val`` and ``test``. Pairs with an empty side are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice, zip_longest
from pathlib import Path

from datamodules.sources import CorpusError, RemoteFile, fetch, open_bytes
from datamodules.tatoeba import LANGUAGES as TATOEBA_LANGUAGES
from datamodules.tatoeba import tatoeba_files

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


def corpus_files(source: str, pair: str, split: str) -> list[Path] | None:
    """The files a split is read from, [source, target] or [tsv]; None for a Hugging Face dataset."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if source == "multi30k":
        src_lang, tgt_lang = parse_pair(pair, MULTI30K_LANGUAGES)
        return [fetch(multi30k_file(split, lang)) for lang in (src_lang, tgt_lang)]
    if source == "tatoeba":
        langs = parse_pair(pair, TATOEBA_LANGUAGES)
        files = tatoeba_files(split)
        return [files[lang] for lang in langs]
    if source.startswith("hf:"):
        return None
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise CorpusError(
            f"parallel corpus {source!r} not found: not 'multi30k', not 'hf:<dataset>', and not a folder. "
            f"Fix: pass a folder holding <split>.<lang> files or <split>.tsv files."
        )
    src_lang, tgt_lang = parse_pair(pair)
    tsv = folder / f"{split}.tsv"
    if tsv.is_file():
        return [tsv]
    return [first_existing(folder, f"{split}.{lang}") for lang in (src_lang, tgt_lang)]


def load_parallel(source: str, pair: str, split: str) -> ParallelText:
    """A split as lists of sentences (for the small splits and for inspection; training data streams from
    ``iter_pairs`` into Arrow instead, see TranslationDataModule)."""
    paths = corpus_files(source, pair, split)
    if paths is None:
        return load_hf_parallel(source[3:], pair, split)
    report: dict[str, int] = {}
    pairs = list(iter_pairs(paths, report))
    return ParallelText([s for s, _ in pairs], [t for _, t in pairs], skipped_empty=report["skipped_empty"])


def iter_pairs(paths: list[Path], report: dict[str, int] | None = None) -> Iterator[tuple[str, str]]:
    """The stripped (source, target) pairs of a split's files, line by line, both sides non-empty; the pairs
    with an empty side are skipped and counted in ``report["skipped_empty"]`` (set once all are read)."""
    rows = tsv_rows(paths[0]) if len(paths) == 1 else aligned_rows(*paths)
    kept = skipped = 0
    for src, tgt in rows:
        src, tgt = src.strip(), tgt.strip()
        if src and tgt:
            kept += 1
            yield src, tgt
        else:
            skipped += 1
    if not kept:
        raise no_text_error(paths[0], paths[-1], skipped)
    if report is not None:
        report["skipped_empty"] = skipped


def aligned_rows(src_path: Path, tgt_path: Path) -> Iterator[tuple[str, str]]:
    """Line i of each file, together; files of different lengths are an error, naming both counts."""
    src_lines, tgt_lines = lines_of(src_path), lines_of(tgt_path)
    count = 0
    for src, tgt in zip_longest(src_lines, tgt_lines):
        if src is None or tgt is None:
            rest = 1 + sum(1 for _ in (src_lines if tgt is None else tgt_lines))
            counts = (count + rest, count) if tgt is None else (count, count + rest)
            raise CorpusError(
                f"parallel files differ in length: {src_path} has {counts[0]} lines, {tgt_path} has {counts[1]}. "
                f"Fix: the files must be line-aligned (line i of one translates line i of the other)."
            )
        count += 1
        yield src, tgt


def tsv_rows(path: Path) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(lines_of(path), 1):
        if line.count("\t") != 1:
            raise CorpusError(f"{path}, line {number}: expected 'source<TAB>target', found {line.count(chr(9))} tabs.")
        src, tgt = line.split("\t")
        yield src, tgt


def write_pairs_arrow(paths: list[Path], out: Path, chunk: int = 50_000) -> int:
    """Stream a split's pairs into an Arrow file (columns src, tgt) that datasets maps from disk, ``chunk``
    pairs at a time, so no more than a chunk of text is ever held in Python; written whole or not at all.
    Returns the number of pairs skipped for an empty side."""
    import pyarrow as pa

    schema = pa.schema([("src", pa.string()), ("tgt", pa.string())])
    report: dict[str, int] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            pairs = iter_pairs(paths, report)
            while block := list(islice(pairs, chunk)):
                writer.write_batch(
                    pa.record_batch([pa.array([s for s, _ in block]), pa.array([t for _, t in block])], schema)
                )
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)  # a corpus error mid-way leaves nothing behind
    return report["skipped_empty"]


def multi30k_file(split: str, lang: str) -> RemoteFile:
    name = f"{MULTI30K_FILE_STEMS[split]}.{lang}.gz"
    return RemoteFile("multi30k", name, MULTI30K_URL + name, MULTI30K_SHA256[name])


def first_existing(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise CorpusError(f"{folder} has no {stem} (or {stem}.gz, or a .tsv for the split). Fix: add the file.")


def no_text_error(src_path: Path, tgt_path: Path, lines: int) -> CorpusError:
    files = str(src_path) if src_path == tgt_path else f"{src_path} and {tgt_path}"
    return CorpusError(
        f"{files} hold no pair where both sides have text: all {lines} lines are blank on one side or both. "
        f"Fix: point source at the files that hold the sentences."
    )


def lines_of(path: Path) -> Iterator[str]:
    """The lines of a text file (gzip, whatever its name, or plain), without line ends, one at a time;
    invalid UTF-8 names file and line."""
    with open_bytes(path) as handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise CorpusError(f"{path}, line {number}: invalid UTF-8 ({error}). Fix: re-encode the file as UTF-8.")


def align(src: list[str], tgt: list[str], src_path: Path, tgt_path: Path) -> ParallelText:
    if len(src) != len(tgt):
        raise CorpusError(
            f"parallel files differ in length: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}. "
            f"Fix: the files must be line-aligned (line i of one translates line i of the other)."
        )
    kept = [(s.strip(), t.strip()) for s, t in zip(src, tgt) if s.strip() and t.strip()]
    if not kept:
        raise no_text_error(src_path, tgt_path, len(src))
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
