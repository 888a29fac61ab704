"""`zoo translate`: sentences from stdin or a file, one per line, to translations on stdout, batched."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from zoo.cli.decoding_flags import add_compute_type_flag, add_decoding_flags, decoding_options
from zoo.cli.errors import USER_ERRORS
from zoo.cli.model_option import model_for_command
from zoo.cli.stop_signals import Stopped, stop_requests
from zoo.cli.text_lines import InputError, input_name, iter_lines, one_line, open_input
from zoo.generation.options import DecodingOptions
from zoo.hub.checkpoints import CheckpointError
from zoo.modules.compute_types import COMPUTE_TYPES, decoding_copy
from zoo.tasks.translation_inputs import source_room

PROGRESS_ABOVE = 200  # lines: shorter inputs get no progress bar
# Lines are read, length-sorted, translated and written a chunk at a time: the first chunk is one batch (its
# lines come out at once), the others this many batches (sorting 2,048 lines pads sources 5% more than
# sorting a whole 20,000-line input, where 16 batches pad 10% more).
CHUNK_BATCHES = 32
OPTIONS = ["beam_size", "n_best", "max_len_a", "max_len_b", "length_penalty"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo translate",
        description="Translate sentences (one per line, from stdin or --input, UTF-8) with a translation model; "
        "writes exactly one line per input line (an empty line for an empty one), as the lines are done. "
        "--beam-size 1 decodes greedily; with --n-best above 1, each input line gives n lines "
        "'line ||| translation ||| score'. Ctrl-C stops with the output a complete prefix; --skip-lines goes on.",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="a .ckpt file written by `zoo fit`, or a bundle folder from `zoo export`")
    model.add_argument(
        "--pretrained", help="a registered name (e.g. transformer-multi30k-en-fr), a bundle folder, or a URL"
    )
    parser.add_argument("--input", type=Path, default=None, help="a text file, one sentence per line (default: stdin)")
    add_decoding_flags(parser, OPTIONS, beam_size=5)
    parser.add_argument("--batch-size", type=int, default=64, help="sentences translated together")
    parser.add_argument(
        "--skip-lines",
        type=int,
        default=0,
        metavar="N",
        help="start at input line N + 1 (to go on after a stop, which says N; append the output to the first part's)",
    )
    parser.add_argument(
        "--engine",
        choices=["zoo", "ctranslate2"],
        default="zoo",
        help="ctranslate2: --checkpoint is a folder from `zoo export --format ctranslate2` (pip install "
        "'seq-zoo[export]'); its length penalty is length ** alpha, not GNMT's (equal at 0)",
    )
    add_compute_type_flag(parser, [*COMPUTE_TYPES, "int8_float32"], "; with --engine ctranslate2: its own types")
    parser.add_argument(
        "--too-long",
        choices=["truncate", "skip", "error"],
        default="truncate",
        help="a line longer than the model reads: translate its first tokens (default), write an "
        "empty line, or stop there (the lines before it written); either of the first two is reported on stderr",
    )
    return parser


def translate_main(argv: list[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.skip_lines < 0:
        parser.error(f"--skip-lines must be >= 0, got {args.skip_lines}")
    options = decoding_options(args, OPTIONS)
    options["strategy"] = "beam" if args.beam_size > 1 or args.n_best > 1 else "greedy"
    written = Written(args.skip_lines)
    try:
        DecodingOptions(**options).check()  # before loading anything
        model = load_translator(args)
        write_translations(model, args, options, written)
    except Stopped as stopped:
        parser.exit(stopped.exit_code, f"zoo translate: stopped by {stopped.cause}: {written.resume_hint()}\n")
    except BrokenPipeError:
        raise  # the reader left (`| head`): zoo.cli.app ends quietly
    except USER_ERRORS as error:
        if written.lines:  # zoo.cli.app reports it, with what is already written
            raise PartlyWritten(f"{error} ({written.resume_hint()})") from error
        raise


class PartlyWritten(ValueError):
    """A user error after some translations were written: the message says which, and how to go on."""


def write_translations(model, args: argparse.Namespace, options: dict, written: Written) -> None:
    """Translate the input to stdout chunk by chunk, counting in ``written`` the input lines whose output is out."""
    name = input_name(args.input)
    stream = open_input(args.input)
    try:
        with stop_requests() as stop:
            lines = islice(written.counting(iter_lines(stream, name)), args.skip_lines, None)
            chunks = translate_chunks(model, lines, args.batch_size, options, args.too_long, name, args.skip_lines)
            for outputs in chunks:
                with stop.deferred():  # a stop waits until these lines are out, whole
                    sys.stdout.write("".join(output + "\n" for output in outputs))
                    sys.stdout.flush()  # lines appear as their chunk is done
                    written.lines += len(outputs)
    finally:
        if args.input is not None:
            stream.close()
    if args.skip_lines and written.read <= args.skip_lines:
        print(
            f"zoo translate: --skip-lines {args.skip_lines} skips the whole input ({written.read} lines): "
            f"nothing was translated.",
            file=sys.stderr,
        )


@dataclass
class Written:
    """How far the output goes: ``lines`` input lines after the ``skipped`` ones have their translations on it."""

    skipped: int
    lines: int = 0
    read: int = 0  # input lines read, the skipped ones included

    def counting(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            self.read += 1
            yield line

    def resume_hint(self) -> str:
        done = self.skipped + self.lines
        if not self.lines:
            return "no line was written."
        return (
            f"the translations of input lines {self.skipped + 1}-{done} are written, each complete. To go on, "
            f"run the same command with --skip-lines {done}, appending to that output (>>)."
        )


def load_translator(args: argparse.Namespace):
    if args.engine == "ctranslate2":
        if not args.checkpoint:
            raise CheckpointError(
                "--engine ctranslate2 reads a CTranslate2 folder: pass it as --checkpoint. Fix: write one with "
                "`zoo export --pretrained NAME --format ctranslate2 --out FOLDER`."
            )
        from zoo.interop.ctranslate2_engine import CTranslate2Translator

        return CTranslate2Translator(args.checkpoint, compute_type=args.compute_type)
    model = model_for_command(
        args.checkpoint,
        args.pretrained,
        "translate_n_best",
        "does not translate. Fix: pass a translation "
        "model (zoo.Seq2Seq or zoo.Transformer); for language models use `zoo generate`.",
    )
    return decoding_copy(model, args.compute_type.removesuffix("_float32"))


def translate_chunks(
    model,
    lines: Iterable[str],
    batch_size: int,
    options: dict,
    too_long: str = "truncate",
    name: str = "input",
    first: int = 0,
) -> Iterator[list[str]]:
    """Translations in input order, a chunk of at most ``CHUNK_BATCHES * batch_size`` input lines at a time
    (so memory holds one chunk, whatever the input's size): a list per chunk, one entry per input line (``n_best``
    > 1: n lines 'i ||| text ||| score', i counting input lines from 0, the ``first`` skipped ones included).
    Inside a chunk, batches hold sentences of similar length (less padding). A line with nothing to translate
    gives an empty entry; a line longer than the model reads (``max_source_tokens``) is, by ``too_long``:
    ``truncate``d (its first tokens translated), ``skip``ped (an empty entry) or an ``error`` (the chunk is
    cut before it); the first two are reported on stderr with the line number. An input error (a line that
    is not UTF-8) or a long line under ``error`` is raised once every line before it is yielded: what was
    yielded is always a complete, aligned prefix of the output."""
    progress = None
    for chunk, error in _chunks(lines, batch_size):
        encoded = model.encode_sources(chunk)  # once: measured here, translated below
        lengths = [len(e.ids) for e in encoded]
        room = source_room(model.max_source_tokens)
        long = [i for i, n in enumerate(lengths) if n > room]
        if long and too_long == "error":
            i = long[0]
            error = InputError(
                f"{name}, line {first + i + 1}: {lengths[i]} tokens, more than the {room} this model reads. Fix: "
                f"split the line, or --too-long truncate (translate its first {room} tokens) or skip (an empty line)."
            )
            chunk, encoded, lengths, long = chunk[:i], encoded[:i], lengths[:i], []
        for i in long:
            done = f"translated its first {room}" if too_long == "truncate" else "skipped (an empty output line)"
            print(
                f"zoo translate: {name}, line {first + i + 1}: {lengths[i]} tokens, more than the {room} this model "
                f"reads; {done}.",
                file=sys.stderr,
            )
        if progress is None:
            progress = tqdm(unit="sent", disable=len(chunk) < PROGRESS_ABOVE, file=sys.stderr)
        skipped = set(long) if too_long == "skip" else set()
        todo = sorted((i for i, n in enumerate(lengths) if n and i not in skipped), key=lambda i: lengths[i])
        outputs: list[list[tuple[str, float]]] = [[] for _ in chunk]
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            for i, n_best in zip(batch, model.translate_n_best([encoded[i] for i in batch], truncate=True, **options)):
                outputs[i] = n_best
            progress.update(len(batch))
        yield [_output_lines(n_best, first + i, options["n_best"]) for i, n_best in enumerate(outputs)]
        first += len(chunk)
        if error is not None:
            raise error
    if progress is not None:
        progress.close()


def _chunks(lines: Iterable[str], batch_size: int) -> Iterator[tuple[list[str], InputError | None]]:
    """``lines`` in lists of one batch, then of ``CHUNK_BATCHES`` batches: the first lines come out at once,
    the later chunks give the length sort room. An InputError while reading ends the input, handed on with
    the lines read before it."""
    chunk: list[str] = []
    size = batch_size
    try:
        for line in lines:
            chunk.append(line)
            if len(chunk) == size:
                yield chunk, None
                chunk, size = [], CHUNK_BATCHES * batch_size
    except InputError as error:
        yield chunk, error
        return
    if chunk:
        yield chunk, None


def _output_lines(n_best: list[tuple[str, float]], index: int, n: int) -> str:
    """An input line's output: its translation (empty when there is none), or n lines 'index ||| text ||| score'."""
    if n == 1:
        return one_line(n_best[0][0]) if n_best else ""
    return "\n".join(f"{index} ||| {one_line(text)} ||| {score:.4f}" for text, score in n_best)
