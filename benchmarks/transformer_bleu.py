"""Transformer BLEU on Multi30k test_2016_flickr en->fr after CPU budgets: the curve, the last weights and averages.

Trains the shipped recipe, configs/transformer/multi30k_en_fr.yaml (or --config), through the
zoo CLI (W&B offline) for the longest budget. After every epoch's validation and at each budget
mark it saves the weights with the wall-clock time since training started (validation
included). Then, for each budget, it scores on the test set the weights at the mark and
the average of the last ``--average`` snapshots up to the mark (checkpoint averaging),
greedy and beam 5, SacreBLEU 13a on detokenized output, cased and lowercased.

    python benchmarks/transformer_bleu.py [--budgets 25 60] [--average 5] [--config PATH] [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import sacrebleu
import torch
from lightning.pytorch.callbacks import Callback
from seq2seq_bleu import translate_all  # the sibling script

from datamodules.parallel_corpus import load_parallel
from zoo import load_model
from zoo.cli import ZooCLI
from zoo.hub.checkpoint_averaging import average_checkpoints

CASED, LOWERCASED = sacrebleu.BLEU(), sacrebleu.BLEU(lowercase=True)
CONFIG = Path(__file__).resolve().parents[1] / "configs/transformer/multi30k_en_fr.yaml"


class Snapshots(Callback):
    """Weights after every validation and when training time crosses each budget, with their times."""

    def __init__(self, folder: Path, budgets_min: list[float]):
        self.folder, self.marks = folder, sorted(budgets_min)
        self.records: list[dict] = []

    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60

    def save(self, trainer, name: str, **extra) -> None:
        path = self.folder / f"{name}.ckpt"
        trainer.save_checkpoint(path, weights_only=True)
        self.records.append(
            {
                "name": name,
                "minutes": round(self.minutes(), 2),
                "step": trainer.global_step,
                "epoch": trainer.current_epoch,
                "path": str(path),
                **extra,
            }
        )
        (self.folder / "snapshots.json").write_text(json.dumps(self.records, indent=1))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.marks and self.minutes() >= self.marks[0]:
            self.save(trainer, f"at_{self.marks.pop(0):g}min", budget=True)

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            self.save(
                trainer,
                f"epoch{trainer.current_epoch:03d}",
                val_bleu=round(float(metrics["val/bleu"]), 2),
                val_loss=round(float(metrics["val/loss"]), 4),
            )


def train(config: Path, out: Path, budgets: list[float], overrides: list[str]) -> list[dict]:
    snapshots = Snapshots(out / "snapshots", budgets)
    max_time = f"00:00:{int(max(budgets)):02d}:{int(max(budgets) % 1 * 60):02d}"
    cli = ZooCLI(
        args=[
            "--config",
            str(config),
            "--trainer.max_time",
            max_time,
            "--trainer.default_root_dir",
            str(out),
            "--trainer.logger.init_args.save_dir",
            str(out),
            *overrides,
        ],
        run=False,
    )
    cli.trainer.callbacks.append(snapshots)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    if snapshots.marks:  # max_time ended training a step before the last mark's check
        snapshots.save(cli.trainer, f"at_{snapshots.marks.pop(0):g}min", budget=True)
    return snapshots.records


def score(path: Path, sources, references) -> dict:
    model = load_model(path)
    result = {}
    for label, options in (("greedy", dict(strategy="greedy")), ("beam5", dict(strategy="beam", beam_size=5))):
        hypotheses, _ = translate_all(model, sources, **options)
        result[label] = round(CASED.corpus_score(hypotheses, [references]).score, 2)
        result[f"{label}_lc"] = round(LOWERCASED.corpus_score(hypotheses, [references]).score, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[25, 60], help="minutes of training")
    parser.add_argument("--average", type=int, default=5, help="snapshots averaged at each budget")
    parser.add_argument("--config", type=Path, default=CONFIG, help="the recipe to train")
    parser.add_argument("--out", type=Path, default=Path("runs/transformer_bleu"))
    parser.add_argument("--quick", action="store_true", help="budgets of 1 and 2 minutes, 100 test sentences")
    parser.add_argument("--score-only", action="store_true", help="reuse the snapshots of an earlier run in --out")
    args, overrides = (
        parser.parse_known_args()
    )  # anything else goes to `zoo fit`, e.g. --model.init_args.learning_rate 1e-3
    budgets, average = ([1, 2], 2) if args.quick else (args.budgets, args.average)
    if args.score_only:
        records = json.loads((args.out / "snapshots" / "snapshots.json").read_text())
    else:
        records = train(args.config, args.out, budgets, overrides)

    print("\nvalidation curve (greedy BLEU on val, after each epoch):")
    print(f"{'epoch':>6}{'step':>7}{'minutes':>9}{'val loss':>10}{'val BLEU':>10}")
    for r in records:
        if "val_bleu" in r:
            print(f"{r['epoch']:>6}{r['step']:>7}{r['minutes']:>9.1f}{r['val_loss']:>10.3f}{r['val_bleu']:>10.2f}")

    torch.set_grad_enabled(False)
    test = load_parallel("multi30k", "en-fr", "test")
    sources, references = (test.src[:100], test.tgt[:100]) if args.quick else (test.src, test.tgt)
    print(f"\nMulti30k test_2016_flickr en->fr, {len(sources)} sentences")
    print(f"{'budget':>7}{'step':>7}  {'weights':<14}{'greedy':>8}{'lc':>7}{'beam 5':>8}{'lc':>7}")
    summary = {"benchmark": "transformer_bleu", "quick": args.quick}
    for budget in budgets:
        mark = next(r for r in records if r.get("budget") and r["name"] == f"at_{budget:g}min")
        upto = [r for r in records if r["minutes"] <= mark["minutes"] and "val_bleu" in r]
        upto = upto[max(0, len(upto) - (average - 1)) :]
        averaged = average_checkpoints(
            [r["path"] for r in upto] + [mark["path"]], args.out / f"average_{budget:g}min.ckpt"
        )
        for label, path in (("last", mark["path"]), (f"average of {len(upto) + 1}", averaged)):
            s = score(path, sources, references)
            print(
                f"{budget:>6g}m{mark['step']:>7}  {label:<14}{s['greedy']:>8.2f}{s['greedy_lc']:>7.2f}{s['beam5']:>8.2f}{s['beam5_lc']:>7.2f}"
            )
            summary[f"{budget:g}min_{label.split()[0]}"] = s
    print("signatures:", CASED.get_signature(), "|", LOWERCASED.get_signature())
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
