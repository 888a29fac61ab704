"""`zoo generate`: text from a language-model checkpoint."""

from __future__ import annotations

import argparse
import sys

from zoo.checkpoints import CheckpointError, load_model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo generate", description="Continue a prompt with a language model trained by `zoo fit`."
    )
    parser.add_argument("--checkpoint", required=True, help="a .ckpt file written by `zoo fit`")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--length", type=int, default=300, help="characters to generate (default 300)")
    parser.add_argument("--strategy", choices=["sample", "greedy"], default="sample")
    parser.add_argument("--temperature", type=float, default=1.0, help="> 0; lower is more conservative")
    parser.add_argument("--seed", type=int, default=None, help="makes sampling repeatable")
    return parser


def generate_main(argv: list[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model = load_model(args.checkpoint)
        text = model.generate_text(
            args.prompt, args.length, strategy=args.strategy, temperature=args.temperature, seed=args.seed
        )
    except (CheckpointError, ValueError) as error:
        parser.exit(2, f"zoo generate: error: {error}\n")
    sys.stdout.write(args.prompt + text + "\n")
