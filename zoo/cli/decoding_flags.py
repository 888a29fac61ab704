"""Command-line flags for decoding options, built from zoo.generation.options.DecodingOptions (declared once)."""

from __future__ import annotations

import argparse
import typing
from dataclasses import fields

from zoo.generation.options import DecodingOptions
from zoo.modules.compute_types import COMPUTE_TYPES

_FIELDS = {f.name: f for f in fields(DecodingOptions)}
_TYPES = typing.get_type_hints(DecodingOptions)


def add_decoding_flags(parser: argparse.ArgumentParser, names: list[str], **defaults) -> None:
    """``--beam-size`` and the like for the DecodingOptions ``names``, with their help; ``defaults`` replace
    the dataclass defaults where a command has its own (zoo generate samples by default)."""
    for name in names:
        kind, default = _TYPES[name], defaults.get(name, _FIELDS[name].default)
        help = _FIELDS[name].metadata["help"] + ("" if default is None else f" (default {default})")
        flag = "--" + name.replace("_", "-")
        choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else None
        if choices:
            parser.add_argument(flag, choices=choices, default=default, help=help)
        elif kind is bool:
            parser.add_argument(flag, action="store_true", help=help)
        else:
            value_type = next(t for t in (typing.get_args(kind) or (kind,)) if t is not type(None))
            parser.add_argument(flag, type=value_type, default=default, help=help)


def decoding_options(args: argparse.Namespace, names: list[str]) -> dict:
    """The options the user's flags give, leaving out unset ones (None) so that the model's defaults apply."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def add_compute_type_flag(parser: argparse.ArgumentParser, choices=COMPUTE_TYPES, more_help: str = "") -> None:
    """``--compute-type``, with CTranslate2's names (zoo/modules/compute_types.py)."""
    parser.add_argument(
        "--compute-type",
        choices=choices,
        default="default",
        help="float32; bfloat16 (a copy of the weights in bf16, scores kept in fp32); int8 (Linear layers quantized "
        "by torch's dynamic quantization); default: bfloat16 for Transformers where the CPU has native bf16 "
        "(AVX512-BF16, AMX), else float32" + more_help,
    )
