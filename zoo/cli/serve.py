"""`zoo serve`: a local demo page (Gradio) for translation and text generation models."""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.hub.checkpoints import CheckpointError
from zoo.hub.loading import load_model, load_pretrained
from zoo.hub.model_card import limits_section, markdown_table, split_card
from zoo.hub.pretrained import PACKAGE_DIR, registry


def card_of(spec: str, model) -> str:
    """The model's card: its bundle's README, else one written from what the model knows of itself."""
    known = registry()
    folder = None
    if spec in known and known[spec]["url"].startswith("package:"):
        folder = PACKAGE_DIR / known[spec]["url"].removeprefix("package:")
    elif Path(spec).is_dir():
        folder = Path(spec)
    if folder is not None and (folder / "README.md").is_file():
        return split_card((folder / "README.md").read_text(encoding="utf-8"))[1]
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    return (
        f"# {type(model).__name__} ({parameters:.2f}M parameters)\n\nFrom `{spec}`.\n\n"
        f"{limits_section(getattr(model, 'training_data', None))}\n"
        f"## Hyperparameters\n\n{markdown_table(model.hparams, ('argument', 'value'))}\n"
    )


def serve_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo serve",
        description="A demo page in the browser: translate with the translation models, generate with the "
        "language models, each with its model card. Needs the optional extra: pip install 'seq-zoo[demo]'. "
        "Without --pretrained or --checkpoint it serves every registered pretrained model.",
    )
    parser.add_argument("--pretrained", action="append", default=[], help="a registered name or bundle (repeatable)")
    parser.add_argument("--checkpoint", action="append", default=[], help="a .ckpt file or bundle folder (repeatable)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--no-batching", action="store_true", help="decode one request at a time (for comparison)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must lie in 1..65535, got {args.port}")
    try:
        from zoo.demo.page import Served, build_page
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise  # a bug of ours, not a missing extra
        raise ImportError(f"{error}. Fix: pip install 'seq-zoo[demo]' (Gradio).") from error
    specs = [(name, load_pretrained) for name in args.pretrained] + [(path, load_model) for path in args.checkpoint]
    if not specs:
        specs = [(name, load_pretrained) for name in registry()]
    served = []
    for spec, load in specs:
        model = load(spec)
        if not hasattr(model, "translate_n_best") and not hasattr(model, "generate_text"):
            raise CheckpointError(f"{spec} holds a {type(model).__name__}, which neither translates nor generates")
        served.append(Served(spec, model, card_of(spec, model)))
    page = build_page(served, batching=not args.no_batching)
    print(f"zoo serve: {len(served)} model(s) on http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
    try:
        page.launch(
            server_name=args.host,
            server_port=args.port,
            share=False,
            quiet=True,
            show_error=False,
            prevent_thread_lock=True,
        )
    except OSError as error:  # the port is taken
        raise OSError(f"{error}. Fix: choose another --port.") from error
    print("zoo serve: the page is up", flush=True)  # (scripts and tests wait for this line)
    page.block_thread()
