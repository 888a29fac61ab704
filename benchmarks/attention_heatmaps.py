"""Where each attention type looks: trained translation models on the same Multi30k test sentences.

For every model (a Seq2Seq per attention type: bahdanau, dot, general, concat; a Transformer,
whose last decoder layer's cross-attention is averaged over heads), greedy
translations of the first test sentences and, over every target token, how peaked its
attention is (the largest weight, and the entropy in nats; uniform attention over the
source would have entropy ln(source length)). With --figure, the heatmaps of one sentence
side by side (the README's picture).

    python benchmarks/attention_heatmaps.py --checkpoint BAHDANAU.ckpt --checkpoint DOT.ckpt ... \
        [--checkpoint transformer-multi30k-en-fr] [--quick] [--figure PNG]
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
from pathlib import Path

import torch

from callbacks.translation_samples import draw_attention
from datamodules.parallel_corpus import load_parallel
from zoo import load_pretrained

FIGURE = Path(__file__).resolve().parent / "figures" / "attention.png"
BATCH = 50


def attention_statistics(details: list[dict]) -> dict[str, float]:
    peaks, entropies, uniform = [], [], []
    for detail in details:
        rows = detail["attention"]  # (target tokens, source pieces + <eos>)
        peaks.append(rows.max(dim=1).values)
        entropies.append(-(rows * rows.clamp_min(1e-12).log()).sum(dim=1))
        uniform.append(torch.full((len(rows),), math.log(rows.shape[1])))
    mean = lambda parts: float(torch.cat(parts).mean())  # noqa: E731 (over all target tokens)
    return {"max_weight": mean(peaks), "entropy": mean(entropies), "uniform_entropy": mean(uniform)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="a translation model (repeat per type)")
    parser.add_argument("--sentences", type=int, default=1000, help="test sentences for the statistics")
    parser.add_argument("--example", type=int, default=0, help="the test sentence drawn in the figure")
    parser.add_argument("--figure", type=Path, default=None, help=f"save the heatmaps (the README's is {FIGURE})")
    parser.add_argument("--quick", action="store_true", help="100 sentences")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    sources = load_parallel("multi30k", "en-fr", "test").src[: 100 if args.quick else args.sentences]

    print(f"Multi30k test_2016_flickr en->fr, {len(sources)} sentences, greedy; attention per target token")
    print(f"{'attention':<12}{'mean max weight':>17}{'mean entropy (nats)':>21}{'uniform would be':>18}")
    summary, examples = {}, []
    for path in args.checkpoint:
        model = load_pretrained(path)  # a .ckpt, a bundle folder or a pretrained name
        name = model.hparams.get("attention", "transformer")
        details = []
        for i in range(0, len(sources), BATCH):
            details += [n_best[0][2] for n_best in model.translate_n_best(sources[i : i + BATCH], attention=True)]
        stats = attention_statistics(details)
        print(f"{name:<12}{stats['max_weight']:>17.3f}{stats['entropy']:>21.3f}{stats['uniform_entropy']:>18.3f}")
        summary[name] = {k: round(v, 4) for k, v in stats.items()}
        text, _score, detail = model.translate_n_best([sources[args.example]], attention=True)[0][0]
        examples.append((name, text, detail))

    if args.figure:
        import matplotlib.pyplot as plt  # the Agg backend is set by callbacks.translation_samples

        columns = min(2 if len(examples) <= 4 else 3, len(examples))
        rows = math.ceil(len(examples) / columns)
        figure, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 5.5 * rows), squeeze=False)
        for ax, (name, text, detail) in zip(axes.flat, examples):
            draw_attention(ax, detail["src"], detail["tgt"], detail["attention"], textwrap.fill(f"{name}: {text}", 70))
        for ax in list(axes.flat)[len(examples) :]:
            ax.axis("off")
        figure.tight_layout()
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.figure, dpi=100)
        print(f"figure: {args.figure}")
    print(json.dumps({"benchmark": "attention_heatmaps", "quick": args.quick, "sentences": len(sources), **summary}))


if __name__ == "__main__":
    main()
