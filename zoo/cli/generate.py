"""`zoo generate`: text from a language-model checkpoint."""

from __future__ import annotations

import argparse
import sys

from zoo.cli.decoding_flags import add_compute_type_flag, add_decoding_flags, decoding_options
from zoo.cli.model_option import model_for_command
from zoo.generation.options import DecodingOptions
from zoo.modules.compute_types import decoding_copy

MAX_LENGTH = 20_000  # about two minutes for the shipped char-RNN on a 2-core CPU; longer: call generate_texts
PROGRESS_ABOVE = 1_000  # tokens: longer generations show a progress bar on stderr
OPTIONS = ["strategy", "temperature", "top_k", "top_p", "beam_size", "n_best", "length_penalty", "seed"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo generate",
        description="Continue a prompt with a language model (a checkpoint, bundle or pretrained name).",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="a .ckpt file written by `zoo fit`, or a bundle folder from `zoo export`")
    model.add_argument("--pretrained", help="a registered name (e.g. char-rnn-shakespeare), a bundle folder, or a URL")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument(
        "--length", type=int, default=300, help=f"characters to generate (default 300, at most {MAX_LENGTH:,})"
    )
    add_decoding_flags(parser, OPTIONS, strategy="sample")
    add_compute_type_flag(parser)
    return parser


def generate_main(argv: list[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.length <= MAX_LENGTH:
        parser.error(
            f"--length must lie in 1..{MAX_LENGTH:,} (longer takes minutes per 10,000 characters), got {args.length}. "
            f"Fix: ask for less, or call model.generate_texts(prompt, length) from Python."
        )
    options = {**decoding_options(args, OPTIONS), "progress": args.length > PROGRESS_ABOVE}
    DecodingOptions(**options).check()  # before loading anything
    model = model_for_command(
        args.checkpoint,
        args.pretrained,
        "generate_texts",
        "does not continue text. Fix: pass a language "
        "model (zoo.CharRNN or zoo.TransformerLM); for translation use `zoo translate`.",
    )
    model = decoding_copy(model, args.compute_type)
    results = model.generate_texts(args.prompt, args.length, **options)
    if len(results) == 1:
        sys.stdout.write(args.prompt + results[0][0] + "\n")
        return
    for rank, (text, score) in enumerate(results, 1):
        sys.stdout.write(f"--- {rank} (score {score:.4f})\n{args.prompt}{text}\n")
