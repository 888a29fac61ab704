"""`zoo translate`: sentences from stdin or a file, one per line, to translations on stdout, batched."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from zoo.checkpoints import CheckpointError
from zoo.pretrained import load_for_command

PROGRESS_ABOVE = 200  # lines: shorter inputs get no progress bar


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo translate",
        description="Translate sentences (one per line, from stdin or --input) with a translation model; "
        "writes one line per input line (an empty line for an empty one).",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="a .ckpt file written by `zoo fit`, or a bundle folder from `zoo export`")
    model.add_argument("--pretrained", help="a registered name (e.g. transformer-multi30k-en-fr), a bundle folder, or a URL")
    parser.add_argument("--input", type=Path, default=None, help="a text file, one sentence per line (default: stdin)")
    parser.add_argument("--beam-size", type=int, default=5, help="1 decodes greedily (default 5)")
    parser.add_argument("--n-best", type=int, default=1,
                        help="translations per sentence; above 1 each output line is 'line ||| translation ||| score'")  # fmt: skip
    parser.add_argument("--max-len-a", type=float, default=None, help="length limit a * source length + b (default: the model's)")
    parser.add_argument("--max-len-b", type=int, default=None, help="see --max-len-a")
    parser.add_argument("--length-penalty", type=float, default=1.0, help="alpha of GNMT's ((5+L)/6)^alpha")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences translated together")
    return parser


def translate_main(argv: list[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    options = {"strategy": "beam" if args.beam_size > 1 or args.n_best > 1 else "greedy", "beam_size": args.beam_size,
               "n_best": args.n_best, "length_penalty": args.length_penalty}  # fmt: skip
    options.update({k: v for k, v in (("max_len_a", args.max_len_a), ("max_len_b", args.max_len_b)) if v is not None})
    try:
        model = load_for_command(
            args.checkpoint, args.pretrained, "translate_n_best", "does not translate. Fix: pass a translation "
            "model (zoo.Seq2Seq or zoo.Transformer); for language models use `zoo generate`.",
        )
        lines = (args.input.read_text(encoding="utf-8") if args.input else sys.stdin.read()).splitlines()
        for line in translate_lines(model, lines, args.batch_size, options):
            sys.stdout.write(line + "\n")
    except (CheckpointError, ValueError, OSError) as error:
        parser.exit(2, f"zoo translate: error: {error}\n")


def translate_lines(model, lines: list[str], batch_size: int, options: dict):
    """Output lines in input order. Batches hold sentences of similar length (less padding);
    empty input lines give empty output lines, so the output stays aligned with the input."""
    outputs: list[list[tuple[str, float]]] = [[] for _ in lines]
    todo = sorted((i for i, line in enumerate(lines) if line.strip()), key=lambda i: len(lines[i]))
    with tqdm(total=len(todo), unit="sent", disable=len(todo) < PROGRESS_ABOVE, file=sys.stderr) as progress:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            for i, n_best in zip(chunk, model.translate_n_best([lines[i] for i in chunk], **options)):
                outputs[i] = n_best
            progress.update(len(chunk))
    for i, n_best in enumerate(outputs):
        if options["n_best"] == 1:
            yield n_best[0][0] if n_best else ""
        else:
            for text, score in n_best:
                yield f"{i} ||| {text} ||| {score:.4f}"
