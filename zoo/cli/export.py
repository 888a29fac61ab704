"""`zoo export`: a `zoo fit` checkpoint -> a portable bundle folder (safetensors, JSON, tokenizer, model card)."""

from __future__ import annotations

import argparse

from zoo.hub.bundles import export_bundle
from zoo.hub.checkpoints import CheckpointError


def export_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo export",
        description="Write a checkpoint's model as a bundle: model.safetensors, config.json, the tokenizer and "
        "a README model card. zoo.load_pretrained(folder) loads it without unpickling anything.",
    )
    parser.add_argument("--checkpoint", required=True, help="a .ckpt file written by `zoo fit`")
    parser.add_argument("--out", required=True, help="the bundle folder to write: new or empty, unless --force")
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder (as a whole)")
    parser.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        default="float32",
        help="storage type of the weights (float16 halves the size; loading gives float32)",
    )
    args = parser.parse_args(argv)
    try:
        folder = export_bundle(args.checkpoint, args.out, args.dtype, force=args.force)
    except (CheckpointError, OSError) as error:
        parser.exit(2, f"zoo export: error: {error}\n")
    print(f"bundle written to {folder}")
