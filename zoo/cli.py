"""The `zoo` command: Lightning's fit/validate/test/predict from one YAML file, plus inference commands.

    zoo fit --config configs/char_rnn/shakespeare_stateful.yaml [--model.init_args.hidden_size 256 ...]
    zoo generate --pretrained char-rnn-shakespeare --prompt "ROMEO:" --length 300 --temperature 0.8
    zoo translate --checkpoint PATH < sentences.txt
    zoo export --checkpoint PATH --out BUNDLE_DIR
"""

from __future__ import annotations

import difflib
import importlib
import sys

import lightning as L
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from datamodules.sources import CorpusError
from zoo.checkpoints import CheckpointError, read_checkpoint
from zoo.wandb_run import RUN_ID_KEY, ConfigToLoggerCallback, default_to_offline

DESCRIPTION = "seq-zoo: train sequence models from one YAML file (Lightning's CLI; `zoo --help` lists every command)."
COMMANDS = {  # subcommands outside LightningCLI: module, function
    "generate": ("zoo.generate_command", "generate_main"),
    "translate": ("zoo.translate_command", "translate_main"),
    "export": ("zoo.export_command", "export_main"),
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
HELP = """usage: zoo COMMAND [options]       (zoo COMMAND --help: that command's options)

Train, evaluate and use sequence models. Every training run is one YAML file (configs/);
any trainer, model or data option can be overridden on the command line.

training and evaluation (Lightning's CLI)
  fit        train a model
               zoo fit --config configs/char_rnn/shakespeare_stateful.yaml --trainer.max_epochs 3
  validate   a checkpoint's validation metrics
               zoo validate --config CONFIG --ckpt_path CKPT
  test       a checkpoint's test metrics (translation: SacreBLEU with beam search)
               zoo test --config CONFIG --ckpt_path CKPT

using a trained model (a .ckpt from zoo fit, a bundle folder, or a pretrained name)
  generate   continue a prompt with a language model
               zoo generate --pretrained char-rnn-shakespeare --prompt "ROMEO:"
  translate  translate lines from stdin or a file
               zoo translate --pretrained transformer-multi30k-en-fr < input.en > output.fr
  export     write a checkpoint as a portable bundle (safetensors + JSON)
               zoo export --checkpoint CKPT --out my-model

A class's options: zoo fit --model.help zoo.CharRNN, zoo fit --data.help datamodules.CharDataModule
"""


LINKS = [  # DataModule attribute -> model argument
    ("vocab_size", "vocab_size"),
    ("vocab", "vocab"),
    ("src_vocab_size", "src_vocab_size"),
    ("tgt_vocab_size", "tgt_vocab_size"),
    ("pad_id", "pad_id"),
    ("bos_id", "bos_id"),
    ("eos_id", "eos_id"),
    ("src_tokenizer_json", "src_tokenizer"),
    ("tgt_tokenizer_json", "tgt_tokenizer"),
]


class ZooCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None, **kwargs):
        super().__init__(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=ConfigToLoggerCallback,
            parser_kwargs={"prog": "zoo", "description": DESCRIPTION},
            trainer_defaults={"plugins": [{"class_path": "zoo.atomic_checkpoint_io.AtomicCheckpointIO"}]},
            args=args,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Applied after the DataModule is built (it reads the corpus to know its vocabulary);
        # Lightning >= 2.6 stores linked values in the model's hparams, so checkpoints rebuild it.
        # A link whose source or target the chosen classes lack is skipped, so one list serves
        # language models (vocab) and translation models (two vocabularies, special ids, tokenizers).
        for source, target in LINKS:
            parser.link_arguments(f"data.{source}", f"model.init_args.{target}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        logger = config.trainer.logger
        if not getattr(logger, "class_path", "").endswith("WandbLogger"):
            return
        if default_to_offline():
            print(
                "W&B: no credentials found, so the run is logged offline; `wandb sync <run dir>` uploads it "
                "later (W&B prints the exact command at the end). Set WANDB_API_KEY or run `wandb login` to log online."
            )
        # `zoo fit --ckpt_path` continues the W&B run that wrote the checkpoint.
        ckpt_path = config.get("ckpt_path")
        if self.subcommand == "fit" and ckpt_path and not logger.init_args.get("id"):
            run_id = read_checkpoint(ckpt_path).get(RUN_ID_KEY)
            if run_id:
                logger.init_args.id = run_id

    def after_fit(self) -> None:
        checkpoint = self.trainer.checkpoint_callback
        if checkpoint is not None and self.trainer.is_global_zero:
            print(f"checkpoints: best {checkpoint.best_model_path or '-'} | last {checkpoint.last_model_path or '-'}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of `zoo` and `python -m zoo`; ``argv`` defaults to the command line."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(HELP, end="")
        sys.exit(0 if args else 2)
    if args[0] in COMMANDS:
        module, function = COMMANDS[args[0]]
        getattr(importlib.import_module(module), function)(args[1:])
        return
    if not args[0].startswith("-") and args[0] not in LIGHTNING_COMMANDS:
        known = [*LIGHTNING_COMMANDS, *COMMANDS]
        close = difflib.get_close_matches(args[0], known, n=1)
        hint = f"did you mean `zoo {close[0]}`? " if close else ""
        sys.exit(f"zoo: error: unknown command {args[0]!r}; {hint}Commands: {', '.join(known)} (zoo --help).")
    try:
        ZooCLI(args=argv)
    except (CorpusError, CheckpointError) as error:  # bad input with a known fix: no traceback
        sys.exit(f"zoo: error: {error}")
