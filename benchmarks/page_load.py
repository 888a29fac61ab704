"""How the demo page (`zoo serve`) holds with many people at once: its decode engine batching their requests,
against the same page decoding one request at a time (`zoo serve --no-batching`).

Clients are threads on this machine, each with Gradio's own client (gradio_client), sending the real
test_2016_flickr sentences one at a time to the shipped translator's Translate button (greedy: beam size 1,
n-best 1), as the page's users do: every answer also carries its attention heatmap, drawn on the server.
Reported: sentences/s, latency percentiles, failed requests, and answers equal to offline `translate`.

    python benchmarks/page_load.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from datamodules.parallel_corpus import load_parallel
from zoo import load_pretrained

REPO = Path(__file__).resolve().parents[1]
MODEL = "transformer-multi30k-en-fr"


def start_page(batching: bool) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "zoo", "serve", "--pretrained", MODEL, "--port", str(port)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    page = subprocess.Popen(
        command + ([] if batching else ["--no-batching"]), cwd=REPO, stdout=subprocess.PIPE, text=True, env=env
    )
    for line in page.stdout:
        if line.strip() == "zoo serve: the page is up":
            return page, f"http://127.0.0.1:{port}/"
    raise RuntimeError(f"zoo serve ended (rc {page.wait()}) before its page came up")


def load(url: str, sentences: list[str], clients: int) -> dict:
    from gradio_client import Client

    todo, answers, latencies, failures = list(enumerate(sentences)), {}, [], []
    lock = threading.Lock()
    users = [Client(url, verbose=False) for _ in range(clients)]

    def user(client) -> None:
        while True:
            with lock:
                if not todo:
                    return
                i, sentence = todo.pop()
            start = time.perf_counter()
            try:
                answers[i] = client.predict(sentence, 1, 1, api_name="/translate_0")[0]
                latencies.append(time.perf_counter() - start)
            except Exception as error:  # a full queue, a timeout: counted, not fatal
                failures.append(f"{type(error).__name__}: {str(error)[:80]}")

    threads = [threading.Thread(target=user, args=(client,)) for client in users]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {
        "sentences_per_s": len(latencies) / seconds,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": q[94],
        "failed": len(failures),
        "failures": sorted(set(failures))[:3],
        "answers": answers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 sentences (else 256)")
    args = parser.parse_args()
    sentences = load_parallel("multi30k", "en-fr", "test").src[: 64 if args.quick else 256]
    concurrency = (1, 8, 32)
    expected = load_pretrained(MODEL).translate(sentences)  # the page decodes in float32
    results = {}
    for batching in (True, False):
        page, url = start_page(batching)
        try:
            for clients in concurrency:
                results[batching, clients] = load(url, sentences, clients)
        finally:
            page.terminate()
            page.wait()
    print(f"\n{len(sentences)} test_2016_flickr sentences, greedy, each answer with its heatmap")
    print(f"{'page':<16}{'clients':>8}{'sent/s':>9}{'p50 s':>8}{'p95 s':>8}{'failed':>8}{'= offline':>11}")
    for (batching, clients), r in results.items():
        equal = sum(r["answers"].get(i) == text for i, text in enumerate(expected))
        name = "engine batching" if batching else "one at a time"
        print(
            f"{name:<16}{clients:>8}{r['sentences_per_s']:>9.1f}{r['p50']:>8.3f}{r['p95']:>8.3f}{r['failed']:>8}"
            f"{equal:>8}/{len(sentences)}"
        )
        for failure in r["failures"]:
            print(f"    {failure}")
    most = concurrency[-1]
    summary = {
        "benchmark": "page_load",
        "clients": most,
        "batching_per_s": round(results[True, most]["sentences_per_s"], 2),
        "one_at_a_time_per_s": round(results[False, most]["sentences_per_s"], 2),
        "speedup": round(results[True, most]["sentences_per_s"] / results[False, most]["sentences_per_s"], 2),
        "failed": sum(r["failed"] for r in results.values()),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
