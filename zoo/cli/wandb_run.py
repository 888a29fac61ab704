"""W&B glue for the CLI: offline without credentials, the config logged once, resume into the same run."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

RUN_ID_KEY = "wandb_run_id"  # where checkpoints keep the W&B run they belong to


def has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def default_to_offline() -> bool:
    """With no credentials and no explicit WANDB_MODE, run offline instead of prompting for a login."""
    if "WANDB_MODE" in os.environ or has_wandb_credentials():
        return False
    os.environ["WANDB_MODE"] = "offline"
    return True


def unused_path(path: Path, text: str) -> Path:
    """``path``, or, when a file with other content is already there (a user's, or another run's), the first
    free ``<stem>-N<suffix>`` beside it: a run never overwrites a file it did not write."""
    candidate, n = path, 0
    while candidate.exists() and candidate.read_text(errors="replace") != text:
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


class ConfigToLoggerCallback(SaveConfigCallback):
    """Sends the full nested CLI config to the logger once and saves the YAML with the run.

    With W&B the YAML lands in the run's files (so `wandb sync` uploads it) and the nested
    config becomes the run config; models call ``save_hyperparameters(logger=False)`` so
    the same values are not logged again as flat hyperparameters. Checkpoints record the
    W&B run id, so ``zoo fit --ckpt_path`` continues the same run.
    """

    def __init__(self, parser, config, **kwargs):
        # Not "config.yaml": W&B keeps its own run config under that name in the same folder.
        kwargs = {"config_filename": "lightning_config.yaml", **kwargs, "save_to_log_dir": False}
        super().__init__(parser, config, **kwargs)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        text = self.parser.dump(self.config, skip_none=False)
        values = yaml.safe_load(text)
        if getattr(pl_module, "parent", None):  # a fine-tuning run: which model, exactly, it started from
            values["parent"] = {key: pl_module.parent[key] for key in ("name", "sha256", "class_path")}
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                run = logger.experiment
                path = Path(run.dir) / self.config_filename
                path.write_text(text)
                run.save(str(path), base_path=run.dir, policy="now")
                run.config.update(values, allow_val_change=True)
            else:
                logger.log_hyperparams(values)
        if not trainer.loggers:  # (not trainer.log_dir: it is a collective, and this runs on rank 0 only)
            path = unused_path(Path(trainer.default_root_dir) / self.config_filename, text)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                checkpoint[RUN_ID_KEY] = logger.version
