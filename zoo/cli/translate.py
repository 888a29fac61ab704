"""`zoo translate`: sentences from stdin or a file, one per line, to translations on stdout, batched."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from zoo.cli.decoding_flags import add_decoding_flags, decoding_options
from zoo.cli.text_lines import InputError, input_name, one_line, read_lines
from zoo.generation.options import DecodingOptions
from zoo.hub.checkpoints import CheckpointError
from zoo.hub.pretrained import load_for_command
from zoo.modules.int8 import int8_copy

PROGRESS_ABOVE = 200  # lines: shorter inputs get no progress bar
OPTIONS = ["beam_size", "n_best", "max_len_a", "max_len_b", "length_penalty"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo translate",
        description="Translate sentences (one per line, from stdin or --input, UTF-8) with a translation model; "
        "writes exactly one line per input line (an empty line for an empty one). --beam-size 1 decodes "
        "greedily; with --n-best above 1, each input line gives n lines 'line ||| translation ||| score'.",
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
        "--engine",
        choices=["zoo", "ctranslate2"],
        default="zoo",
        help="ctranslate2: --checkpoint is a folder from `zoo export --format ctranslate2` (pip install "
        "'seq-zoo[export]'); its length penalty is length ** alpha, not GNMT's (equal at 0)",
    )
    parser.add_argument(
        "--compute-type",
        choices=["default", "float32", "int8", "int8_float32"],
        default="default",
        help="int8: Linear layers quantized (our model: torch's dynamic quantization; ctranslate2: its int8); "
        "default: as stored",
    )
    parser.add_argument(
        "--too-long",
        choices=["truncate", "skip", "error"],
        default="truncate",
        help="a line longer than the model reads: translate its first tokens (default), write an "
        "empty line, or stop before translating anything; either of the first two is reported on stderr",
    )
    return parser


def translate_main(argv: list[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    options = decoding_options(args, OPTIONS)
    options["strategy"] = "beam" if args.beam_size > 1 or args.n_best > 1 else "greedy"
    try:
        DecodingOptions(**options).check()  # before loading anything
        model = load_translator(args)
        lines = read_lines(args.input)
        for line in translate_lines(model, lines, args.batch_size, options, args.too_long, input_name(args.input)):
            sys.stdout.write(line + "\n")
    except (CheckpointError, ValueError, OSError, ImportError) as error:
        parser.exit(2, f"zoo translate: error: {error}\n")


def load_translator(args: argparse.Namespace):
    if args.engine == "ctranslate2":
        if not args.checkpoint:
            raise CheckpointError(
                "--engine ctranslate2 reads a CTranslate2 folder: pass it as --checkpoint. Fix: write one with "
                "`zoo export --pretrained NAME --format ctranslate2 --out FOLDER`."
            )
        from zoo.interop.ctranslate2_engine import CTranslate2Translator

        return CTranslate2Translator(args.checkpoint, compute_type=args.compute_type)
    model = load_for_command(
        args.checkpoint,
        args.pretrained,
        "translate_n_best",
        "does not translate. Fix: pass a translation "
        "model (zoo.Seq2Seq or zoo.Transformer); for language models use `zoo generate`.",
    )
    return int8_copy(model) if args.compute_type.startswith("int8") else model


def translate_lines(
    model, lines: list[str], batch_size: int, options: dict, too_long: str = "truncate", name: str = "input"
):
    """Output lines in input order: exactly one per input line (``n_best`` lines 'i ||| text ||| score' with
    ``n_best`` > 1). Batches hold sentences of similar length (less padding). A line with nothing to
    translate gives an empty line; a line longer than the model reads (``max_source_tokens``) is, by
    ``too_long``: ``truncate``d (its first tokens translated), ``skip``ped (an empty line) or an ``error``
    raised before anything is translated; the first two are reported on stderr with the line number."""
    lengths = model.source_lengths(lines) if lines else []
    room = model.max_source_tokens - 1  # and one <eos>
    long = [i for i, n in enumerate(lengths) if n > room]
    if long and too_long == "error":
        more = f" (and {len(long) - 1} more lines)" if len(long) > 1 else ""
        raise InputError(
            f"{name}, line {long[0] + 1}: {lengths[long[0]]} tokens, more than the {room} this model reads{more}. "
            f"Fix: split the line, or --too-long truncate (translate its first {room} tokens) or skip (an empty line)."
        )
    for i in long:
        done = f"translated its first {room}" if too_long == "truncate" else "skipped (an empty output line)"
        print(
            f"zoo translate: {name}, line {i + 1}: {lengths[i]} tokens, more than the {room} this model reads; {done}.",
            file=sys.stderr,
        )
    skipped = set(long) if too_long == "skip" else set()
    outputs: list[list[tuple[str, float]]] = [[] for _ in lines]
    todo = sorted((i for i, n in enumerate(lengths) if n and i not in skipped), key=lambda i: lengths[i])
    with tqdm(total=len(todo), unit="sent", disable=len(todo) < PROGRESS_ABOVE, file=sys.stderr) as progress:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            for i, n_best in zip(chunk, model.translate_n_best([lines[i] for i in chunk], truncate=True, **options)):
                outputs[i] = n_best
            progress.update(len(chunk))
    for i, n_best in enumerate(outputs):
        if options["n_best"] == 1:
            yield one_line(n_best[0][0]) if n_best else ""
        else:
            for text, score in n_best:
                yield f"{i} ||| {one_line(text)} ||| {score:.4f}"
