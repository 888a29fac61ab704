"""Fine-tuning the shipped Shakespeare char-RNN on a text with characters it has never seen, at a 3-minute budget.

The text: Multi30k's 29,000 French training captions (2.1 MB; é, è, à, ç, ... are new to the Shakespeare model).
Contenders, each trained by `zoo fit` with configs/char_rnn/shakespeare_stateful.yaml on that text for the same
wall-clock budget, one after another:
  fine-tune  --pretrained char-rnn-shakespeare --data.init_args.extend_vocab true (new characters get new rows)
  scratch    the same config and size from random weights, with the text's own vocabulary
Both last checkpoints are then scored on the text's last 10% (validation nats per character, stateful, as
`zoo validate` reports; both vocabularies hold every character of the text's training 90%).

    python benchmarks/char_fine_tuning.py [--minutes 3] [--out DIR] [--quick]

--quick: 30-second budgets (numbers only show that it works).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import lightning as L

from callbacks import HiddenStateCallback
from datamodules import CharDataModule
from datamodules.parallel_corpus import lines_of, multi30k_file
from datamodules.sources import fetch
from zoo import load_model

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs/char_rnn/shakespeare_stateful.yaml"
CONTENDERS = {
    "fine-tune": ["--pretrained", "char-rnn-shakespeare", "--data.init_args.extend_vocab", "true"],
    "scratch": [],
}


def french_captions(out: Path) -> Path:
    path = out / "multi30k-train-captions.fr.txt"
    path.write_text("".join(f"{line}\n" for line in lines_of(fetch(multi30k_file("train", "fr")))), encoding="utf-8")
    return path


def train(name: str, text: Path, seconds: int, out: Path) -> Path:
    folder = out / name
    command = [
        *(sys.executable, "-m", "zoo", "fit", "--config", str(CONFIG), *CONTENDERS[name]),
        *("--data.init_args.source", str(text), "--trainer.max_time", f"00:00:{seconds // 60:02d}:{seconds % 60:02d}"),
        *("--trainer.logger", "false", "--trainer.enable_progress_bar", "false"),
        *("--trainer.default_root_dir", str(folder)),
    ]
    print(f"{name}: training for {seconds} s: {' '.join(command[2:])}", flush=True)
    subprocess.run(command, check=True, cwd=out, stdout=subprocess.DEVNULL)
    return folder / "checkpoints" / "last.ckpt"


def val_nats(path: Path, text: Path) -> float:
    model = load_model(path)
    data = CharDataModule(str(text), mode="stateful", seq_len=100, batch_size=64, vocab=model.vocab)
    trainer = L.Trainer(
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[HiddenStateCallback(mode="preserve")],
    )
    return trainer.validate(model, data, verbose=False)[0]["val/loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "runs" / "char_fine_tuning")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 30 if args.quick else round(args.minutes * 60)
    args.out.mkdir(parents=True, exist_ok=True)
    text = french_captions(args.out)
    results = {name: round(val_nats(train(name, text, seconds, args.out), text), 4) for name in CONTENDERS}
    print(
        f"\nval nats/char on {text.name} after {seconds} s of training each (configs/char_rnn/shakespeare_stateful.yaml)"
    )
    for name, value in results.items():
        print(f"{name:<12}{value:>10.4f}")
    print(
        json.dumps(
            {
                "seconds": seconds,
                **results,
                "scratch minus fine-tune": round(results["scratch"] - results["fine-tune"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
