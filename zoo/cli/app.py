"""The `zoo` command: Lightning's fit/validate/test from one YAML file, plus inference commands.

zoo fit --config configs/char_rnn/shakespeare_stateful.yaml [--model.init_args.hidden_size 256 ...]
zoo generate --pretrained char-rnn-shakespeare --prompt "ROMEO:" --length 300 --temperature 0.8
zoo translate --checkpoint PATH < sentences.txt
zoo export --checkpoint PATH --out BUNDLE_DIR
zoo serve
"""

from __future__ import annotations

import difflib
import importlib
import os
import signal
import sys
from functools import cached_property
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from callbacks.checkpoint_on_error import CheckpointOnError
from callbacks.hidden_state import HiddenStateCallback
from datamodules.checks import require_in
from zoo.cli import pretrained_option
from zoo.cli.errors import USER_ERRORS
from zoo.cli.wandb_run import RUN_ID_KEY, ConfigToLoggerCallback, default_to_offline
from zoo.hub.checkpoints import CheckpointError, check_class, check_compatible, read_checkpoint, saved_class_path
from zoo.hub.loading import load_pretrained
from zoo.models.registry import public_class_path
from zoo.modules.compute_types import default_training_precision
from zoo.tasks.fine_tuning import start_from

DESCRIPTION = "seq-zoo: train sequence models from one YAML file (Lightning's CLI; `zoo --help` lists every command)."
COMMANDS = {  # subcommands outside LightningCLI: module, function
    "generate": ("zoo.cli.generate", "generate_main"),
    "translate": ("zoo.cli.translate", "translate_main"),
    "export": ("zoo.cli.export", "export_main"),
    "serve": ("zoo.cli.serve", "serve_main"),
    "api": ("zoo.cli.api", "api_main"),
    "list": ("zoo.cli.list_command", "list_main"),
}
# Lightning's `predict` is left out: `zoo translate` and `zoo generate` are how a trained model is used.
LIGHTNING_COMMANDS = ("fit", "validate", "test")
LIBRARY_PACKAGES = [
    Path(__file__).resolve().parents[2] / name for name in ("zoo", "datamodules", "callbacks")
]  # zoo/cli/app.py
HELP = """usage: zoo COMMAND [options]       (zoo COMMAND --help: that command's options)

Train, evaluate and use sequence models. Every training run is one YAML file (configs/);
any trainer, model or data option can be overridden on the command line.

training and evaluation (Lightning's CLI)
  fit        train a model, or fine-tune a trained one on new data (--pretrained)
               zoo fit --config configs/char_rnn/shakespeare_stateful.yaml --trainer.max_epochs 3
               zoo fit --config configs/transformer/tatoeba_en_fr_fine_tune.yaml --pretrained transformer-multi30k-en-fr
  validate   a checkpoint's validation metrics
               zoo validate --config CONFIG --ckpt_path CKPT
  test       a checkpoint's or a pretrained model's test metrics (translation: SacreBLEU with beam search)
               zoo test --config CONFIG --ckpt_path CKPT
               zoo test --config configs/transformer/multi30k_en_fr.yaml --pretrained transformer-multi30k-en-fr

using a trained model (a .ckpt from zoo fit, a bundle folder, or a pretrained name)
  generate   continue a prompt with a language model
               zoo generate --pretrained char-rnn-shakespeare --prompt "ROMEO:"
  translate  translate lines from stdin or a file
               zoo translate --pretrained transformer-multi30k-en-fr < input.en > output.fr
  export     write a model as a portable bundle, or in the transformers or CTranslate2 format
               zoo export --checkpoint CKPT --out my-model
               zoo export --pretrained transformer-multi30k-en-fr --format transformers --out hf-en-fr
  serve      a demo page in the browser (http://127.0.0.1:7860): translate, generate, model cards
               zoo serve --pretrained transformer-multi30k-en-fr --pretrained char-rnn-shakespeare
  api        an HTTP API that batches concurrent requests (http://127.0.0.1:8000): translate, generate,
             OpenAI's /v1/completions
               zoo api --pretrained transformer-multi30k-en-fr --pretrained char-rnn-shakespeare
  list       the pretrained models: name, family, data, metric, size
               zoo list

A class's options: zoo fit --model.help zoo.CharRNN, zoo fit --data.help datamodules.CharDataModule
"""


LINKS = [  # DataModule attribute -> model argument
    ("vocab_size", "vocab_size"),
    ("vocab", "vocab"),
    ("src_vocab_size", "src_vocab_size"),
    ("tgt_vocab_size", "tgt_vocab_size"),
    ("src_tokenizer_json", "src_tokenizer"),
    ("tgt_tokenizer_json", "tgt_tokenizer"),
]


# oneDNN keeps 1,024 compiled kernels by default, and bf16 training meets more matrix shapes than that (batches
# of every length): the kernels were rebuilt, and 304 steps of the 25-minute Transformer took 212-248 s against
# 192-206 with room for 16,384 (3 alternating runs each on an AMX Xeon, same peak memory; BENCHMARKS.md, "A lead:
# oneDNN's primitive cache"). oneDNN reads the variable when it builds its first kernel; a user's value wins.
PRIMITIVE_CACHE = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")


class ZooCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None, **kwargs):
        os.environ.setdefault(*PRIMITIVE_CACHE)
        super().__init__(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=ConfigToLoggerCallback,
            parser_kwargs={"prog": "zoo", "description": DESCRIPTION},
            trainer_defaults={
                "precision": default_training_precision(),  # a config's or --trainer.precision's value wins
                "plugins": [{"class_path": "zoo.hub.atomic_checkpoint_io.AtomicCheckpointIO"}],
                "callbacks": [CheckpointOnError()],  # (instances: appended to the config's callbacks)
            },
            args=args,
            **kwargs,
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {name: keys for name, keys in LightningCLI.subcommands().items() if name in LIGHTNING_COMMANDS}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Applied after the DataModule is built (it reads the corpus to know its vocabulary);
        # Lightning >= 2.6 stores linked values in the model's hparams, so checkpoints rebuild it.
        # A link whose source or target the chosen classes lack is skipped, so one list serves
        # language models (vocab) and translation models (two vocabularies, special ids, tokenizers).
        for source, target in LINKS:
            parser.link_arguments(f"data.{source}", f"model.init_args.{target}", apply_on="instantiate")
        parser.add_argument("--pretrained", type=str | None, default=None, help=pretrained_option.HELP)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """With --pretrained on the command line, the parent is loaded first and its class becomes the model's
        default, so a fine-tuning config may leave the model out."""
        self.given_args, self.parent = list(sys.argv[1:] if args is None else args), None
        self.peeked_checkpoint: tuple[str, dict] | None = None
        spec = pretrained_option.option_in(self.given_args, "--pretrained")
        if self.given_args:  # (`zoo fit ...`, or a ZooCLI(args, run=False) that has no subcommand)
            if spec is not None:
                self.parent = load_pretrained(spec)
                default_class = public_class_path(type(self.parent))
            else:  # a fine-tuning run's checkpoint: its class, so the check for --pretrained gets to speak
                ckpt = pretrained_option.option_in(self.given_args, "--ckpt_path")
                if ckpt and Path(ckpt).is_file():
                    self.peeked_checkpoint = (ckpt, read_checkpoint(ckpt))  # (read once: resumed_checkpoint)
                found = self.peeked_checkpoint[1] if self.peeked_checkpoint else {}
                default_class = saved_class_path(found) if found.get("parent") else None
                if default_class is None:
                    pretrained_option.check_model_class_given(self.given_args)
            if default_class:
                self.given_args = pretrained_option.with_model_class(self.given_args, default_class)
        # (not super()'s: given args it warns on every `zoo fit` from a shell that args and sys.argv are both set)
        self.config = parser.parse_args(self.given_args)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        # Lightning takes NaN and infinity for these and trains on (NaN clipping turns every weight NaN).
        require_in("[0, inf)", gradient_clip_val=config.trainer.get("gradient_clip_val"))
        require_in("(0, inf)", val_check_interval=config.trainer.get("val_check_interval"))
        self._settle_pretrained(config)
        logger = config.trainer.logger
        if not getattr(logger, "class_path", "").endswith("WandbLogger"):
            return
        if default_to_offline():
            print(
                "W&B: no credentials found, so the run is logged offline; `wandb sync <run dir>` uploads it "
                "later (W&B prints the exact command at the end). Set WANDB_API_KEY or run `wandb login` to log online."
            )
        # `zoo fit --ckpt_path` continues the W&B run that wrote the checkpoint. (The run itself starts only
        # when training does, after _before_run has found the checkpoint fit to continue.)
        if self.subcommand == "fit" and self.resumed_checkpoint and not logger.init_args.get("id"):
            run_id = self.resumed_checkpoint.get(RUN_ID_KEY)
            if run_id:
                logger.init_args.id = run_id

    def _settle_pretrained(self, config) -> None:
        spec = config.get("pretrained")
        parent_of_resumed = (self.resumed_checkpoint or {}).get("parent")
        if spec is None:
            if parent_of_resumed:  # its data would get new tokenizers: refused, after minutes, as other data
                raise CheckpointError(
                    f"{config.ckpt_path} was fine-tuned from {parent_of_resumed['name']}, whose tokenizers or "
                    f"vocabulary read its data. Fix: add --pretrained {parent_of_resumed['name']}."
                )
            return
        if self.parent is None:  # `pretrained:` set in a config file rather than on the command line
            self.parent = load_pretrained(spec)
        explicit = self.parser.parse_args(self.given_args, defaults=False)
        explicit = explicit.get(self.subcommand) if self.subcommand else explicit
        pretrained_option.settle_config(config, explicit, self.parent, spec)
        if self.subcommand == "fit" and config.get("ckpt_path"):
            print(
                f"zoo fit: --pretrained {spec} gives the model and its tokenizers; --ckpt_path {config.ckpt_path} "
                f"resumes the fine-tuning run it wrote (weights, optimizer, step)."
            )

    def _dump_config(self) -> None:
        """Lightning dumps the config for the hyperparameters it saves while it builds the classes. With
        --pretrained the parent's tokenizers are objects in the config then (that is how they reach the
        DataModule), which jsonargparse cannot write and warns about at length; the DataModule saves none (they
        travel in the model, and `pretrained` names where they came from), so dump the config without them."""
        data = self.config[self.subcommand].data.init_args if self.parent is not None and self.subcommand else {}
        tokenizers = data.get("tokenizers")
        if tokenizers is not None:
            data.tokenizers = None
        try:
            super()._dump_config()
        finally:
            if tokenizers is not None:
                data.tokenizers = tokenizers

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        if self.parent is not None and self.subcommand:
            data = self.config[self.subcommand].data.init_args
            if "tokenizers" in data:
                data.tokenizers = None  # objects, not config values: `pretrained` says where they come from
            start_from(self.model, self.parent)

    @cached_property
    def resumed_checkpoint(self) -> dict | None:
        """The checkpoint of ``--ckpt_path`` (read once), None without one or for Lightning's "last"/"best"."""
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not path or path in ("last", "best", "hpc") or path.startswith("registry"):
            return None
        if self.peeked_checkpoint and self.peeked_checkpoint[0] == path:
            return self.peeked_checkpoint[1]
        return read_checkpoint(path)

    def _parse_ckpt_path(self) -> None:
        """Lightning rebuilds the model a --ckpt_path names, whatever class the config chose: a Transformer
        checkpoint would silently turn a char-RNN run into a Transformer run. Refuse another class here (and
        read the file with a clear error if it is damaged) before Lightning does so."""
        if self.resumed_checkpoint is not None:
            config = self.config[self.config.subcommand]
            check_class(self.resumed_checkpoint, config.model.class_path, config.ckpt_path)
        super()._parse_ckpt_path()

    def _before_run(self) -> None:
        """Find the user's mistakes before the trainer writes anything (a W&B run, a log folder, a config
        file): data that cannot be used (the DataModule's setup, which Lightning repeats, reads its splits
        once), and a --ckpt_path this run cannot continue (another model, vocabulary or size). Leave out
        LearningRateMonitor when logging is off (it needs a logger). A model that carries a hidden state, scored
        without the callback that manages it (`zoo validate --pretrained NAME --data ...`), gets the one its
        data layout needs."""
        if self.datamodule is not None:
            self.datamodule.setup(self.subcommand)  # Lightning's stage names are the subcommands
        callbacks = self.trainer.callbacks
        if self.subcommand != "fit" and hasattr(self.model, "hidden_state"):
            if not any(isinstance(c, HiddenStateCallback) for c in callbacks):
                callbacks.append(HiddenStateCallback.for_data(getattr(self.datamodule, "mode", None)))
        if self.resumed_checkpoint is not None:
            check_compatible(self.resumed_checkpoint, self.model, self.config[self.subcommand]["ckpt_path"])
        if not self.trainer.loggers:
            self.trainer.callbacks = [c for c in self.trainer.callbacks if not isinstance(c, LearningRateMonitor)]

    before_fit = before_validate = before_test = _before_run

    def after_fit(self) -> None:
        checkpoint = self.trainer.checkpoint_callback
        if checkpoint is not None and self.trainer.is_global_zero:
            print(f"checkpoints: best {checkpoint.best_model_path or '-'} | last {checkpoint.last_model_path or '-'}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of `zoo` and `python -m zoo`; ``argv`` defaults to the command line."""
    args = sys.argv[1:] if argv is None else argv
    try:
        run_command(args, argv)
        sys.stdout.flush()  # here, so that a reader that left is caught below, not at exit
    except BrokenPipeError:
        # The reader went away (`zoo generate ... | head`): end quietly, as Unix tools do. Python would
        # flush stdout again at exit and complain, so stdout goes to /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)
    except KeyboardInterrupt:
        print(f"zoo {args[0]}: stopped by Ctrl-C.", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except USER_ERRORS as error:
        if os.environ.get("ZOO_TRACEBACK"):
            raise
        message = " ".join(str(reported(error)).split())  # one line, whatever the exception held
        sys.exit(f"zoo {args[0]}: error: {message} (ZOO_TRACEBACK=1 shows the traceback)")


def reported(error: BaseException) -> BaseException:
    """The error to show: jsonargparse wraps a constructor's ValueError in a long union message, and
    our errors wrap torch's; so the first in the chain of causes that our own code raised, else the deepest."""
    chain = [error]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    return next((e for e in chain if _raised_in_this_library(e)), chain[-1])


def _raised_in_this_library(error: BaseException) -> bool:
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    path = Path(frame.tb_frame.f_code.co_filename).resolve() if frame is not None else None
    return path is not None and any(path.is_relative_to(package) for package in LIBRARY_PACKAGES)


def run_command(args: list[str], argv: list[str] | None) -> None:
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
    ZooCLI(args=argv)
