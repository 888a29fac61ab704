"""Fine-tuning the shipped translator on a new domain: Tatoeba's everyday sentences, at one CPU budget.

Contenders, each trained by `zoo fit` for the same wall-clock budget (default 10 minutes), one after another:
  fine-tune  configs/transformer/tatoeba_en_fr_fine_tune.yaml --pretrained transformer-multi30k-en-fr
  scratch    configs/transformer/tatoeba_en_fr_scratch.yaml (same size, its own BPE, random weights)
  mixed      configs/transformer/tatoeba_en_fr_mixed.yaml --pretrained ... (Multi30k pairs make half the training split)
Each run's last weights, and the parent itself, are then scored with beam 5 (SacreBLEU 13a, detokenized, cased,
as `zoo test` reports) on Tatoeba's validation and test splits (datamodules/tatoeba.py: split by English
sentence) and on Multi30k test_2016_flickr, the parent's own domain.

    python benchmarks/fine_tuning.py [--contenders fine-tune scratch mixed] [--minutes 10] [--out DIR] [--quick]

--quick: 1-minute budgets and the first 200 sentences of each set (numbers only show that it works). Training
budgets cannot be interleaved in one process; run the script when nothing else runs, and compare contenders of one
run of it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import sacrebleu
import torch
from seq2seq_bleu import translate_all  # the sibling script

from datamodules.parallel_corpus import load_parallel
from zoo import load_model, load_pretrained

REPO = Path(__file__).resolve().parents[1]
PARENT = "transformer-multi30k-en-fr"
CONTENDERS = {
    "fine-tune": ("configs/transformer/tatoeba_en_fr_fine_tune.yaml", ["--pretrained", PARENT]),
    "scratch": ("configs/transformer/tatoeba_en_fr_scratch.yaml", []),
    "mixed": ("configs/transformer/tatoeba_en_fr_mixed.yaml", ["--pretrained", PARENT]),
}
SETS = {"tatoeba val": ("tatoeba", "val"), "tatoeba test": ("tatoeba", "test"), "multi30k test": ("multi30k", "test")}


def train(name: str, minutes: float, out: Path) -> Path:
    config, extra = CONTENDERS[name]
    folder = out / name
    command = [
        *(sys.executable, "-m", "zoo", "fit", "--config", str(REPO / config), *extra),
        *("--trainer.max_time", f"00:00:{int(minutes):02d}:{round(minutes % 1 * 60):02d}"),
        *("--trainer.logger", "false", "--trainer.enable_progress_bar", "false"),
        *("--trainer.default_root_dir", str(folder)),
    ]
    print(f"{name}: training for {minutes} minutes: {' '.join(command[2:])}", flush=True)
    subprocess.run(command, check=True, cwd=folder.parent, stdout=subprocess.DEVNULL)
    return folder / "checkpoints" / "last.ckpt"


def scores(model, sets: dict[str, tuple[list[str], list[str]]]) -> dict[str, float]:
    result = {}
    for label, (sources, references) in sets.items():
        hypotheses, _ = translate_all(model, sources, strategy="beam", beam_size=5)
        result[label] = round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "runs" / "fine_tuning")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    minutes, limit = (1.0, 200) if args.quick else (args.minutes, None)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoints = {name: train(name, minutes, args.out) for name in args.contenders}

    torch.set_grad_enabled(False)
    sets = {}
    for label, (source, split) in SETS.items():
        text = load_parallel(source, "en-fr", split)
        sets[label] = (text.src[:limit], text.tgt[:limit])
    table = {"parent (before)": scores(load_pretrained(PARENT), sets)}
    for name, path in checkpoints.items():
        table[name] = scores(load_model(path).eval(), sets)

    print(f"\nBLEU, beam 5, after {minutes} minutes of training each (parent: {PARENT})")
    print(f"{'model':<18}" + "".join(f"{label:>16}" for label in SETS))
    for name, row in table.items():
        print(f"{name:<18}" + "".join(f"{row[label]:>16.2f}" for label in SETS))
    headline = {"minutes": minutes, "sentences_per_set": limit or "all", **{n: r for n, r in table.items()}}
    if "fine-tune" in table and "scratch" in table:
        headline["fine-tune minus scratch, tatoeba val"] = round(
            table["fine-tune"]["tatoeba val"] - table["scratch"]["tatoeba val"], 2
        )
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
