"""Scale of data: TranslationDataModule setup time, peak memory and cache size from 29k to 29M sentence pairs.

The bigger corpora are Multi30k's training set repeated (10x, 100x, 1000x), each copy changed so that no pair
repeats: copy k > 0 ends both sides with the marker " (k)" (digits the tokenizer has seen), so the
vocabulary, the sentence lengths and the tokenizer's work stay those of real captions. Validation and test
are Multi30k's. Each measurement runs in a fresh process (peak memory is per process):
  - cold: an empty cache: read the text, train the 8k BPE tokenizer, tokenize every split into Arrow files;
  - warm: the same setup again, from the cache;
  - then the training DataLoader's first batch (the sampler reads the lengths and cuts the batches).
Peak memory is the process' maximum resident set (ru_maxrss) minus what it held after importing
everything (torch, datasets, tokenizers), so it measures what setup adds; it includes the pages of the
memory-mapped cache files that reading touched (page cache, shared and reclaimable: the OS reads around
every row read, 8 MB at a time on this machine's disk, so a first batch of 50 scattered rows maps ~240 MB
at 2.9M pairs). "Own" is the peak of the process's anonymous memory (RssAnon, sampled every 2 ms): what it
allocates itself, the arrays the sampler sorts and cuts. The cache's size is what it
holds on disk once every split is tokenized (the training text as Arrow, the tokenizers, the token ids).

    python benchmarks/data_scale.py [--quick] [--copies 1 10 100 1000] [--figure benchmarks/figures/data_scale.png]

--quick: 29k and 290k only; the default: 29k, 290k, 2.9M; --copies 1000 adds 29M (about 40 minutes cold, and
20 GB of disk for the corpus and its cache). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MEASURE = r"""
import json, os, resource, sys, threading, time
import datasets, tokenizers, torch
from datamodules import TranslationDataModule

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def anon_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon")) / 1024

anon_peak = [0.0]
def sample_anon():  # the process's own memory (heap, arrays), without the pages of files it maps
    while True:
        anon_peak[0] = max(anon_peak[0], anon_mb())
        time.sleep(0.002)

datasets.disable_progress_bars()
base, base_anon = rss_mb(), anon_mb()
threading.Thread(target=sample_anon, daemon=True).start()
start = time.perf_counter()
dm = TranslationDataModule(sys.argv[1], pair="en-fr", tokenizer="bpe", vocab_size=8000, max_tokens=4000)
dm.setup("fit")
setup = time.perf_counter() - start
start = time.perf_counter()
batch = next(iter(dm.train_dataloader()))
first_batch = time.perf_counter() - start
time.sleep(0.01)
print(json.dumps({"pairs": len(dm.datasets["train"]), "setup_s": setup, "first_batch_s": first_batch,
                  "cache": dm.cache_report["train"], "base_mb": base, "peak_mb": rss_mb() - base,
                  "own_peak_mb": anon_peak[0] - base_anon}))
"""


def build_corpus(folder: Path, source: Path, copies: int) -> None:
    """Multi30k's training set ``copies`` times (copy k > 0 marked " (k)" on both sides), its val and test."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    for language in ("en", "fr"):
        with gzip.open(source / f"train.{language}.gz", "rt", encoding="utf-8") as file:
            lines = file.read().splitlines()
        with open(folder / f"train.{language}", "w", encoding="utf-8") as out:
            for k in range(copies):
                marker = f" ({k})" if k else ""
                out.writelines(f"{line}{marker}\n" for line in lines)
        for split, stem in (("val", "val"), ("test", "test_2016_flickr")):
            with gzip.open(source / f"{stem}.{language}.gz", "rt", encoding="utf-8") as file:
                (folder / f"{split}.{language}").write_text(file.read(), encoding="utf-8")


def measure(folder: Path, cache: Path) -> dict:
    env = {**os.environ, "ZOO_CACHE_DIR": str(cache), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="29k and 290k pairs only (about a minute)")
    parser.add_argument("--copies", type=int, nargs="+", default=None, help="corpus sizes, in copies of Multi30k")
    parser.add_argument("--figure", type=Path, default=None, help="write a plot of time and memory here")
    args = parser.parse_args()
    data = Path(os.environ.get("ZOO_DATA_DIR", "../shared/data")) / "multi30k"
    if not (data / "train.en.gz").is_file():
        raise SystemExit(f"needs Multi30k's files in {data}: set ZOO_DATA_DIR")
    copies = args.copies or ((1, 10) if args.quick else (1, 10, 100))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n in copies:
            folder = Path(work) / f"corpus{n}"
            build_corpus(folder, data, n)
            cache = Path(work) / f"cache{n}"
            cold, warm = measure(folder, cache), measure(folder, cache)
            assert (cold["cache"], warm["cache"]) == ("tokenized", "cached")
            cache_gb = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e9
            rows.append({"copies": n, "pairs": cold["pairs"], "cold": cold, "warm": warm, "cache_gb": cache_gb})
            print(f"{cold['pairs']:>9,} pairs: cold {cold['setup_s']:.1f} s, warm {warm['setup_s']:.1f} s", flush=True)
            shutil.rmtree(folder), shutil.rmtree(cache)  # (29M pairs take 20 GB)
    base = rows[0]
    print(
        f"\n{'pairs':>10} {'cold setup s':>13} {'x 29k':>6} {'warm setup s':>13} {'first batch s':>14} "
        f"{'warm + first s':>15} {'cold peak MB':>13} {'warm peak MB':>13} {'warm own MB':>12} {'cache GB':>9}"
    )
    for row in rows:
        cold, warm = row["cold"], row["warm"]
        print(
            f"{row['pairs']:>10,} {cold['setup_s']:>13.1f} {cold['setup_s'] / base['cold']['setup_s']:>6.1f} "
            f"{warm['setup_s']:>13.2f} {warm['first_batch_s']:>14.2f} {warm['setup_s'] + warm['first_batch_s']:>15.2f} "
            f"{cold['peak_mb']:>13.0f} {warm['peak_mb']:>13.0f} {warm['own_peak_mb']:>12.0f} {row['cache_gb']:>9.2f}"
        )
    print(f"(peak MB: added to the {base['cold']['base_mb']:.0f} MB a process holds after its imports)")
    if args.figure:
        plot(rows, args.figure)
    summary = {
        f"{r['pairs']} pairs": {
            "cold_s": round(r["cold"]["setup_s"], 1),
            "warm_s": round(r["warm"]["setup_s"], 2),
            "warm_first_batch_s": round(r["warm"]["first_batch_s"], 2),
            "cache_gb": round(r["cache_gb"], 2),
            "cold_peak_mb": round(r["cold"]["peak_mb"]),
            "warm_peak_mb": round(r["warm"]["peak_mb"]),
            "warm_own_peak_mb": round(r["warm"]["own_peak_mb"]),
        }
        for r in rows
    }
    print(json.dumps(summary))


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    pairs = [r["pairs"] for r in rows]
    figure = Figure(figsize=(9, 3.6))
    left, right = figure.subplots(1, 2)
    for key, label in (("cold", "cold (tokenizer + tokenizing)"), ("warm", "warm (from the cache)")):
        left.plot(pairs, [r[key]["setup_s"] for r in rows], "o-", label=label)
        right.plot(pairs, [r[key]["peak_mb"] for r in rows], "o-", label=label)
    linear = [rows[0]["cold"]["setup_s"] * p / pairs[0] for p in pairs]
    left.plot(pairs, linear, ":", color="grey", label="linear in pairs (from 29k cold)")
    for axes, title in ((left, "setup time (s)"), (right, "peak memory added (MB)")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("training pairs")
        axes.set_title(title, fontsize=10)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
