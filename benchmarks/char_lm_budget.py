"""Shakespeare character LMs after the same CPU budget: the decoder-only TransformerLM beside the stateful char-RNN.

Trains the shipped configs, configs/transformer/shakespeare_char.yaml and
configs/char_rnn/shakespeare_stateful.yaml, through the zoo CLI (W&B offline) for
``--minutes`` each, one after the other, then measures each final model's loss on the whole
validation split: the last 10% of tinyshakespeare, nanoGPT's split (its baby GPT reports
1.47 on a GPU and about 1.88 for its small CPU configuration). TransformerLM validates on
non-overlapping 128-character windows (a character sees 0-127 earlier ones, as in
nanoGPT's evaluation); the char-RNN on its carried streams.

    ZOO_DATA_DIR=../shared/data python benchmarks/char_lm_budget.py [--minutes 12] [--out DIR] [--quick]
        [--config configs/transformer/shakespeare_char_3min.yaml ...]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import wandb

from zoo.cli import ZooCLI

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MODELS = {
    "TransformerLM (4x192)": CONFIGS / "transformer/shakespeare_char.yaml",
    "char-RNN (2x512 LSTM, stateful)": CONFIGS / "char_rnn/shakespeare_stateful.yaml",
}


def train_and_validate(config: Path, minutes: float, out: Path) -> dict:
    seconds = round(minutes * 60)
    cli = ZooCLI(
        args=[
            "--config",
            str(config),
            "--trainer.max_time",
            f"00:00:{seconds // 60:02d}:{seconds % 60:02d}",
            "--trainer.max_epochs",
            "1000",
            "--trainer.default_root_dir",
            str(out),
            "--trainer.logger.init_args.save_dir",
            str(out),
            "--trainer.enable_progress_bar",
            "false",
        ],
        run=False,
    )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    steps = cli.trainer.global_step
    loss = cli.trainer.validate(cli.model, datamodule=cli.datamodule)[0]["val/loss"]
    wandb.finish()  # the next model gets a W&B run of its own
    return {
        "steps": steps,
        "val_loss": round(loss, 4),
        "bpc": round(loss / math.log(2), 4),
        "checkpoint": cli.trainer.checkpoint_callback.last_model_path,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget per model")
    parser.add_argument("--out", type=Path, default=Path("runs/char_lm_budget"))
    parser.add_argument("--quick", action="store_true", help="one minute per model")
    parser.add_argument(
        "--config", type=Path, action="append", help="train these configs instead of the two above (repeatable)"
    )
    args = parser.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    configs = {config.stem: config for config in args.config} if args.config else MODELS
    results = {name: train_and_validate(config, minutes, args.out / config.stem) for name, config in configs.items()}

    print(f"\ntinyshakespeare, last 10% as validation, {minutes:g} minutes of training each on this CPU")
    print(f"{'model':<34}{'steps':>7}{'val nats/char':>15}{'bits/char':>11}")
    for name, r in results.items():
        print(f"{name:<34}{r['steps']:>7}{r['val_loss']:>15.4f}{r['bpc']:>11.4f}")
    for name, r in results.items():
        print(f"checkpoint of {name}: {r['checkpoint']}")
    print(
        json.dumps(
            {
                "benchmark": "char_lm_budget",
                "minutes": minutes,
                "quick": args.quick,
                **{name: {k: v for k, v in r.items() if k != "checkpoint"} for name, r in results.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
