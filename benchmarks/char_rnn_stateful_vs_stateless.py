"""Stateful vs stateless char-RNN training: the same model for the same wall-clock budget.

Part A, tinyshakespeare: the shipped configs (configs/char_rnn/shakespeare_*.yaml: 2x512
LSTM, seq 100, batch 64), trained one after the other for the same budget; validation loss
(nats/char and bits/char) at equal time and at equal steps, and training chars/s.
Part B, the synthetic long-dependency corpus (datamodules/long_dependency.py): how often each
regime recalls a key that lies further back than seq_len; chance is 1/4.

    python benchmarks/char_rnn_stateful_vs_stateless.py [--quick] [--minutes 10] [--val-every 200] [--figure PNG]

With --figure, also draws both parts' validation curves (the README's picture).

tinyshakespeare is read from $ZOO_DATA_DIR/tinyshakespeare/input.txt (or the cache).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback

from callbacks import HiddenStateCallback
from datamodules import CharDataModule
from datamodules.long_dependency import KEYS, long_dependency_text
from zoo import CharRNN
from zoo.tasks.long_dependency_recall import recall_accuracy

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "char_rnn"


class ValCurve(Callback):
    """(step, seconds of training so far, val loss) after every validation."""

    def __init__(self):
        self.points: list[tuple[int, float, float]] = []
        self.train_seconds = 0.0
        self._since = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._since = self._since or time.perf_counter()

    def on_validation_start(self, trainer, pl_module):
        if self._since is not None:
            self.train_seconds += time.perf_counter() - self._since
            self._since = None

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            loss = float(trainer.callback_metrics["val/loss"])
            self.points.append((trainer.global_step, self.train_seconds, loss))


def train_shipped_config(mode: str, minutes: float, val_every: int, source: str):
    config = yaml.safe_load((CONFIGS / f"shakespeare_{mode}.yaml").read_text())
    L.seed_everything(config["seed_everything"])
    dm = CharDataModule(**{**config["data"]["init_args"], "source": source})
    model = CharRNN(vocab_size=dm.vocab_size, vocab=dm.vocab, **config["model"]["init_args"])
    curve = ValCurve()
    trainer = L.Trainer(
        max_time={"seconds": minutes * 60},
        max_epochs=-1,
        val_check_interval=val_every,
        check_val_every_n_epoch=None,
        gradient_clip_val=config["trainer"]["gradient_clip_val"],
        callbacks=[HiddenStateCallback("preserve" if mode == "stateful" else "reset"), curve],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, dm)
    chars_per_s = trainer.global_step * dm.batch_size * dm.seq_len / max(curve.train_seconds, 1e-9)
    return curve.points, chars_per_s


def part_a(minutes: float, val_every: int, source: str) -> tuple[dict, dict]:
    results = {mode: train_shipped_config(mode, minutes, val_every, source) for mode in ("stateful", "stateless")}
    # Validation runs every `val_every` steps and once more when the time is up; compare
    # at the last step both reached as well as at the end of the budget.
    steps_of = [{step for step, _, _ in points} for points, _ in results.values()]
    common_step = max(set.intersection(*steps_of))
    print(f"\nA. {source}, 2x512 LSTM, seq 100, batch 64, {minutes:g} min each (validation every {val_every} steps)")
    print(
        f"{'mode':<10}{'steps':>7}{'chars/s':>10}{'val nats/char':>15}{'bits/char':>11}"
        f"{'@step ' + str(common_step):>16}"
    )
    summary = {}
    for mode, (points, chars_per_s) in results.items():
        final = points[-1][2]
        at_step = next(loss for step, _, loss in points if step == common_step)
        print(
            f"{mode:<10}{points[-1][0]:>7}{chars_per_s:>10.0f}{final:>15.3f}{final / math.log(2):>11.3f}"
            f"{at_step:>16.3f}"
        )
        summary[mode] = {
            "steps": points[-1][0],
            "chars_per_s": round(chars_per_s),
            "val_nats_per_char": round(final, 4),
            "val_nats_at_common_step": round(at_step, 4),
        }
    print("val curve (step: stateful / stateless):")
    stateless = {step: loss for step, _, loss in results["stateless"][0]}
    for step, _, loss in results["stateful"][0]:
        if step in stateless:
            print(f"  {step:>6}: {loss:.3f} / {stateless[step]:.3f}")
    summary["common_step"] = common_step
    return summary, {mode: points for mode, (points, _) in results.items()}


def part_b(quick: bool) -> tuple[dict, dict]:
    seq_len = 10
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "long_dependency.txt"
        corpus.write_text(long_dependency_text(120_000, max_gap=3 * seq_len, seed=0))
        held_out = long_dependency_text(50_000, max_gap=3 * seq_len, seed=1)
        summary, curves = {}, {}
        for mode in ("stateful", "stateless"):
            L.seed_everything(0)
            curves[mode] = ValCurve()
            dm = CharDataModule(str(corpus), mode=mode, seq_len=seq_len, batch_size=32)
            model = CharRNN(dm.vocab_size, dm.vocab, hidden_size=64, num_layers=1, learning_rate=1e-2)
            trainer = L.Trainer(
                max_epochs=3 if quick else 6,
                val_check_interval=0.25,  # four points per epoch on the curve
                callbacks=[HiddenStateCallback("preserve" if mode == "stateful" else "reset"), curves[mode]],
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
            trainer.fit(model, dm)
            accuracy = recall_accuracy(model.eval(), held_out, seq_len, carry_state=mode == "stateful")
            summary[mode] = {
                "recall_beyond_seq_len": round(accuracy, 4),
                "val_nats_per_char": round(float(trainer.callback_metrics["val/loss"]), 4),
            }
    print(
        f"\nB. synthetic long dependency: key repeated up to {3 * seq_len} chars later, seq_len {seq_len}, "
        f"1x64 LSTM; chance = {1 / len(KEYS):.2f}"
    )
    print(f"{'mode':<10}{'recall of keys beyond seq_len':>31}{'val nats/char':>15}")
    for mode, row in summary.items():
        print(f"{mode:<10}{row['recall_beyond_seq_len']:>31.3f}{row['val_nats_per_char']:>15.3f}")
    summary["chance"] = 1 / len(KEYS)
    return summary, {mode: curve.points for mode, curve in curves.items()}


def draw_curves(shakespeare: dict, long_dependency: dict, minutes: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for mode, style in (("stateful", "-o"), ("stateless", "--s")):
        steps, _, losses = zip(*shakespeare[mode])
        left.plot(steps, losses, style, markersize=3, label=mode)
        steps, _, losses = zip(*long_dependency[mode])
        right.plot(steps, losses, style, markersize=3, label=mode)
    left.set(title=f"tinyshakespeare, 2x512 LSTM, {minutes:g} min each", xlabel="step", ylabel="validation nats/char")
    right.set(title="long dependency (key 10-30 chars back, seq_len 10)", xlabel="step", ylabel="validation nats/char")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per mode in part A")
    parser.add_argument("--val-every", type=int, default=200, help="validation interval in steps, part A")
    parser.add_argument("--source", default="tinyshakespeare")
    parser.add_argument("--figure", type=Path, help="save the validation curves of both parts as this PNG")
    args = parser.parse_args()
    minutes, val_every = (0.3, 6) if args.quick else (args.minutes, args.val_every)
    a, a_curves = part_a(minutes, val_every, args.source)
    b, b_curves = part_b(args.quick)
    if args.figure:
        draw_curves(a_curves, b_curves, minutes, args.figure)
    print(
        json.dumps(
            {
                "benchmark": "char_rnn_stateful_vs_stateless",
                "quick": args.quick,
                "minutes_each": minutes,
                "shakespeare": a,
                "long_dependency": b,
            }
        )
    )


if __name__ == "__main__":
    main()
