"""`zoo api`: the HTTP API (zoo/serving/app.py) for the models given at start-up, on uvicorn."""

from __future__ import annotations

import argparse
import os

from zoo.cli.decoding_flags import add_compute_type_flag
from zoo.cli.serve import card_of
from zoo.hub.checkpoints import CheckpointError
from zoo.hub.loading import load_model, load_pretrained
from zoo.hub.pretrained import registry
from zoo.modules.compute_types import decoding_copy

KEY_VARIABLE = "ZOO_API_KEY"


def default_threads() -> int:
    """The decoders' compute threads unless --threads says: the cores less one (the one left serves HTTP)."""
    import torch

    return max(1, torch.get_num_threads() - 1)


def api_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo api",
        description="An HTTP API for translation and language models: POST /translate, /generate (server-sent "
        "events with stream), /v1/completions (OpenAI's, for the language models), GET /v1/models, /health. "
        "Concurrent requests decode together in one batch. Without --pretrained or --checkpoint it serves "
        "every registered pretrained model.",
    )
    parser.add_argument("--pretrained", action="append", default=[], help="a registered name or bundle (repeatable)")
    parser.add_argument("--checkpoint", action="append", default=[], help="a .ckpt file or bundle folder (repeatable)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--api-key", default=os.environ.get(KEY_VARIABLE), help=f"required on every request (default ${KEY_VARIABLE})"
    )
    parser.add_argument("--no-batching", action="store_true", help="decode one request at a time (for comparison)")
    parser.add_argument(
        "--threads",
        type=int,
        help="compute threads of the decoders (default: torch's, the physical cores, less one, at least 1: the "
        "one left serves HTTP; torch's threads wait for each other at every operation, so one that shares a core "
        "with the server's event loop stalls them all: BENCHMARKS.md, 'zoo api under load')",
    )
    add_compute_type_flag(parser)
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must lie in 1..65535, got {args.port}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    import torch

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    import uvicorn

    from zoo.serving.app import build_app

    specs = [(name, load_pretrained) for name in args.pretrained] + [(path, load_model) for path in args.checkpoint]
    models = {}
    for spec, load in specs or [(name, load_pretrained) for name in registry()]:
        model = load(spec)
        if not hasattr(model, "source_batch") and getattr(model, "vocab", None) is None:
            raise CheckpointError(f"{spec} holds a {type(model).__name__}, which neither translates nor generates text")
        models[spec] = (decoding_copy(model, args.compute_type), card_of(spec, model))
    app = build_app(models, api_key=args.api_key, batching=not args.no_batching)
    print(
        f"zoo api: {len(models)} model(s) on http://{args.host}:{args.port} ({threads} compute thread(s); Ctrl-C "
        "stops)",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
