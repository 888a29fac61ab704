"""Translation engines, same weights: the shipped Transformer in the zoo (float32, bfloat16, int8), in Hugging
Face transformers (its Pegasus export, `generate`) and in CTranslate2 (float32, int8; it has no bfloat16 CPU
kernels).

Real translation of test_2016_flickr (1000 sentences; --quick: the first 256), sorted by length into
batches of 64, each source's length limit 1.5 x source + 10 (transformers: the batch's longest source's, as
its `generate` takes one limit), greedy and beam 5 with length penalty 0.6 (GNMT's ((5 + L) / 6) ** 0.6 in the
zoo, L ** 0.6 in transformers and CTranslate2: the same searches only at 0, so beam hypotheses may differ).
Windows alternate per batch: every engine translates a batch, in rotating order, before the next batch, so
the machine's drift falls on all alike. Every engine uses as many threads as torch (`torch.get_num_threads()`).
CTranslate2 runs in a process of its own, as a user runs it (see OwnProcess: in torch's process it slows torch
down), and times its windows there; the others are timed around `translate` here. Every engine first translates
all the sentences once, untimed: torch's oneDNN builds a kernel for each new matrix shape on its first use (every
number of rows a step runs on), which costs a 256-sentence bf16 run a quarter of its time on its first pass and
nothing after; a server or a long file pays it once (over 1000 sentences a cold first pass is as fast as the next).

    python benchmarks/translation_engines.py [--quick]

Prints sentences/s per engine and decoding, the ratio to transformers, BLEU (SacreBLEU 13a, cased), and the
share of outputs identical to the zoo's float32 ones; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import sacrebleu
import torch

import zoo
from datamodules.parallel_corpus import load_parallel
from zoo.generation.options import DecodingOptions
from zoo.interop.ctranslate2_engine import CTranslate2Translator, export_ctranslate2
from zoo.interop.transformers_export import export_transformers
from zoo.modules.compute_types import decoding_copy, native_bf16

PRETRAINED = "transformer-multi30k-en-fr"
BATCH, ALPHA = 64, 0.6


class HuggingFace:
    """transformers' own classes on the exported folder, translating text like the others."""

    def __init__(self, folder: Path, model):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
        self.a, self.b = model.hparams.max_len_a, model.hparams.max_len_b

    def translate(self, sentences: list[str], strategy: str, **options) -> list[str]:
        batch = self.tokenizer(sentences, return_tensors="pt", padding=True)
        limit = int(self.a * batch.input_ids.shape[1] + self.b)
        beams = options.get("beam_size", 1) if strategy == "beam" else 1
        output = self.model.generate(
            **batch, num_beams=beams, length_penalty=options.get("length_penalty", 1.0), max_new_tokens=limit
        )
        return self.tokenizer.batch_decode(output, skip_special_tokens=True)


class PlainLoop:
    """A hand-written cached greedy loop over the zoo model's own layers, as a user writes one without the
    decoding mixin: the whole batch steps until every row has ended (no finished-row bookkeeping, no
    log-softmax), each row then cut at its own length limit, so its outputs are the zoo's greedy ones."""

    strategies = ("greedy",)

    def __init__(self, model):
        self.model = model
        self.options = DecodingOptions(**model.decoding_defaults())

    def translate(self, sentences: list[str], strategy: str, **options) -> list[str]:
        model = self.model
        batch = model.source_batch(sentences, truncate=False)
        src, pad_mask = batch["src"], batch["src_pad_mask"]
        token = torch.full((len(sentences),), model.bos_id, dtype=torch.long)
        limits = model._length_limits(src, pad_mask, token[:, None], self.options).tolist()  # the zoo's own limits
        state = model.init_state(model.encode(src, pad_mask), pad_mask, len(sentences))
        ended = torch.zeros(len(sentences), dtype=torch.bool)
        out = []
        for _ in range(max(limits)):
            logits, state, _ = model.decode(token[:, None], state)
            token = logits[:, -1].argmax(-1)
            out.append(token)
            ended |= token == model.eos_id
            if bool(ended.all()):
                break
        rows = torch.stack(out, 1)
        return [model.detokenize(row[:limit]) for row, limit in zip(rows, limits)]  # up to the first <eos>


class OwnProcess:
    """An engine built and run in a process of its own, answering ``translate`` over a pipe, with the seconds its
    translation took there (``seconds``). Why: torch loads its libgomp with RTLD_GLOBAL, so CTranslate2's OpenMP
    calls in the same process land in torch's thread pool, from CTranslate2's own worker thread: once that thread
    has opened a team, libgomp counts more OpenMP threads than cores and throttles every thread's spinning between
    parallel regions, and torch's 2-thread matrix products run up to 1.9x slower for the rest of the process (a
    (64 x 256) @ (256 x 1024) bf16 product: 55 us before a CTranslate2 call, 100 after; one thread: 88 either way)."""

    def __init__(self, engine_class, *args):
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve_engine, args=(child, engine_class, args), daemon=True)
        self.process.start()
        self.seconds = 0.0
        self.connection.recv()  # built: its start-up (imports, loading) must not fall in the others' windows

    def translate(self, sentences: list[str], **options) -> list[str]:
        self.connection.send((sentences, options))
        translations, self.seconds = self.connection.recv()
        return translations


def serve_engine(connection, engine_class, args) -> None:
    """OwnProcess's side: build the engine, then translate what arrives until the pipe closes."""
    torch.set_num_threads(args[-1])  # the parent's thread count (the engines' last argument)
    engine = engine_class(*args)
    connection.send("ready")
    while True:
        try:
            sentences, options = connection.recv()
        except EOFError:
            return
        start = time.perf_counter()
        translations = engine.translate(sentences, **options)
        connection.send((translations, time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 sentences (about a minute)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    test = load_parallel("multi30k", "en-fr", "test")
    sources, references = (test.src[:256], test.tgt[:256]) if args.quick else (test.src, test.tgt)
    model = zoo.load_pretrained(PRETRAINED)
    work = Path(tempfile.mkdtemp())
    threads = torch.get_num_threads()
    engines = {
        "zoo": model,
        "zoo bfloat16": decoding_copy(model, "bfloat16"),
        "zoo int8": decoding_copy(model, "int8"),
        "plain loop": PlainLoop(model),
        "transformers": HuggingFace(export_transformers(model, work / "hf"), model),
        "ctranslate2": OwnProcess(CTranslate2Translator, export_ctranslate2(model, work / "ct2"), "float32", threads),
        "ctranslate2 int8": OwnProcess(CTranslate2Translator, work / "ct2", "int8", threads),
    }
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    batches = [order[start : start + BATCH] for start in range(0, len(order), BATCH)]
    decodings = {
        "greedy": {"strategy": "greedy"},
        "beam 5": {"strategy": "beam", "beam_size": 5, "length_penalty": ALPHA},
    }
    rows, summary = [], {"threads": threads, "sentences": len(sources), "native_bf16": native_bf16()}
    for decoding, options in decodings.items():
        names_here = [
            name for name in engines if options["strategy"] in getattr(engines[name], "strategies", ("greedy", "beam"))
        ]
        for name in names_here:  # warm-up, untimed: see the module docstring
            for batch in batches:
                engines[name].translate([sources[i] for i in batch], **options)
        seconds = dict.fromkeys(names_here, 0.0)
        outputs = {name: [""] * len(sources) for name in names_here}
        for b, batch in enumerate(batches):
            names = list(names_here)
            names = names[b % len(names) :] + names[: b % len(names)]  # rotate who goes first
            for name in names:
                start = time.perf_counter()
                translations = engines[name].translate([sources[i] for i in batch], **options)
                elapsed = time.perf_counter() - start
                seconds[name] += engines[name].seconds if isinstance(engines[name], OwnProcess) else elapsed
                for i, text in zip(batch, translations):
                    outputs[name][i] = text
        for name in names_here:
            same = sum(a == b for a, b in zip(outputs[name], outputs["zoo"])) / len(sources)
            bleu = sacrebleu.corpus_bleu(outputs[name], [references]).score
            speed = len(sources) / seconds[name]
            rows.append((decoding, name, speed, seconds["transformers"] / seconds[name], bleu, same))
            summary[f"{decoding} {name} sentences/s"] = round(speed, 1)
            summary[f"{decoding} {name} vs transformers"] = round(seconds["transformers"] / seconds[name], 2)
            summary[f"{decoding} {name} bleu"] = round(bleu, 2)
    print(f"\n{len(sources)} sentences, batches of {BATCH}, {threads} threads, native bf16: {native_bf16()}\n")
    print(f"{'decoding':<8} {'engine':<17} {'sent/s':>8} {'x transformers':>15} {'BLEU':>7} {'same as zoo':>12}")
    for decoding, name, speed, ratio, bleu, same in rows:
        print(f"{decoding:<8} {name:<17} {speed:>8.1f} {ratio:>15.2f} {bleu:>7.2f} {same:>12.1%}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
