"""`zoo export`: a trained model -> a folder another tool loads.

--format bundle        (default) our portable bundle: safetensors, JSON, tokenizer, model card (with its scores,
                       measured on the exported weights, zoo/hub/card_scores.py); from a checkpoint
--format transformers  Hugging Face transformers (Pegasus classes): AutoModelForSeq2SeqLM.from_pretrained(OUT)
--format ctranslate2   CTranslate2, for `zoo translate --engine ctranslate2` or ctranslate2.Translator
"""

from __future__ import annotations

import argparse

from zoo.hub.atomic_writes import refuse_to_overwrite
from zoo.hub.bundles import export_bundle
from zoo.hub.card_scores import card_scores
from zoo.hub.loading import load_model, load_pretrained

FORMATS = ("bundle", "transformers", "ctranslate2")


def export_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo export",
        description="Write a trained model as a folder: our bundle (model.safetensors, config.json, tokenizer, "
        "model card; zoo.load_pretrained(folder) loads it without unpickling anything), or a Transformer "
        "translator in the transformers or CTranslate2 format (optional extra: pip install 'seq-zoo[export]').",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a .ckpt file written by `zoo fit` (or, for the other formats, a bundle)")
    source.add_argument("--pretrained", help="a registered name or bundle folder (transformers, ctranslate2 only)")
    parser.add_argument("--out", required=True, help="the folder to write: new or empty, unless --force")
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder (as a whole)")
    parser.add_argument(
        "--name",
        help="bundle: the name the model card's commands load it by (a registry name, a Hub id; default: --out)",
    )
    parser.add_argument("--format", choices=FORMATS, default="bundle", help="what to write (default: bundle)")
    parser.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        default="float32",
        help="bundle: storage type of the weights (float16 halves the size; loading gives float32)",
    )
    parser.add_argument(
        "--quantization",
        choices=["int8", "int8_float32", "float16"],
        default=None,
        help="ctranslate2: store the weights quantized (default: float32; any can still run as int8)",
    )
    args = parser.parse_args(argv)
    if args.format == "bundle" and args.pretrained:
        parser.error("--format bundle needs --checkpoint (a training checkpoint: the bundle records its metrics)")
    folder = export(args)
    print(f"{args.format} folder written to {folder}")


def export(args: argparse.Namespace):
    if args.format == "bundle":
        refuse_to_overwrite(args.out, args.force)  # before the card's scores take minutes
        card_section = card_scores(args.checkpoint, args.name or args.out, args.dtype)
        return export_bundle(args.checkpoint, args.out, args.dtype, force=args.force, card_section=card_section)
    model = load_model(args.checkpoint) if args.checkpoint else load_pretrained(args.pretrained)
    if args.format == "transformers":
        from zoo.interop.transformers_export import export_transformers

        return export_transformers(model, args.out, force=args.force)
    from zoo.interop.ctranslate2_engine import export_ctranslate2

    return export_ctranslate2(model, args.out, quantization=args.quantization, force=args.force)
