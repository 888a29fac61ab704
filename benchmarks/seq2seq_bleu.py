"""BLEU of trained translation models (checkpoints, bundles, pretrained names) on Multi30k test_2016_flickr en->fr.

SacreBLEU on detokenized output against the raw references (13a tokenizer), and the same
lowercased (the Multi30k literature scores lowercased text), greedy and beam 5; the
signatures are printed.
(Attention heatmaps of the same checkpoints: benchmarks/attention_heatmaps.py.)

    python benchmarks/seq2seq_bleu.py --checkpoint A.ckpt [--checkpoint B.ckpt] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import sacrebleu
import torch

from datamodules.parallel_corpus import load_parallel
from zoo import load_pretrained

BATCH = 64


def translate_all(model, sentences: list[str], **options) -> tuple[list[str], float]:
    start = time.perf_counter()
    out = []
    for i in range(0, len(sentences), BATCH):
        out += model.translate(sentences[i : i + BATCH], **options)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True)
    parser.add_argument("--quick", action="store_true", help="the first 100 test sentences only")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    test = load_parallel("multi30k", "en-fr", "test")
    sources, references = (test.src[:100], test.tgt[:100]) if args.quick else (test.src, test.tgt)
    summary = {}
    cased_bleu, lower_bleu = sacrebleu.BLEU(), sacrebleu.BLEU(lowercase=True)
    print(f"Multi30k test_2016_flickr en->fr, {len(sources)} sentences")
    print(f"{'checkpoint':<40}{'decoding':<10}{'BLEU':>7}{'BLEU lc':>9}{'sent/s':>8}")
    for path in args.checkpoint:
        model = load_pretrained(path)  # a .ckpt, a bundle folder or a pretrained name
        name = f"{model.hparams.get('attention', type(model).__name__)}"
        for label, options in (("greedy", dict(strategy="greedy")), ("beam 5", dict(strategy="beam", beam_size=5))):
            hypotheses, seconds = translate_all(model, sources, **options)
            cased = cased_bleu.corpus_score(hypotheses, [references])
            lower = lower_bleu.corpus_score(hypotheses, [references])
            print(
                f"{Path(path).name[:38]:<40}{label:<10}{cased.score:>7.2f}{lower.score:>9.2f}{len(sources) / seconds:>8.1f}"
            )
            summary[f"{Path(path).name} ({name}) {label}"] = {
                "bleu": round(cased.score, 2),
                "bleu_lowercase": round(lower.score, 2),
            }
    print("signatures:", cased_bleu.get_signature(), "|", lower_bleu.get_signature())
    print(json.dumps({"benchmark": "seq2seq_bleu", "quick": args.quick, "sentences": len(sources), **summary}))


if __name__ == "__main__":
    main()
