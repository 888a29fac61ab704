"""How `zoo api` holds under load: sentences/s and latency at 1 to 128 concurrent clients, with and without
cross-request batching, against offline `translate` of the same sentences (the ceiling).

Clients are asyncio tasks on this machine, each sending the real test_2016_flickr sentences one request at a
time (one sentence per request) to the shipped translator, greedy and beam 5. Each server runs in its own
process (`zoo api`, then `zoo api --no-batching`); the offline ceiling is `model.translate` in batches of 64
sentences in this process, the median of three runs (before, between and after the two servers), in the
compute type `zoo api` decodes in by default (bfloat16 on a CPU with native bf16, else float32:
zoo/modules/compute_types.py). Each server row also says how busy the server's decode loop was (the share of the
window it worked, from /health) and how many rows its steps held on average; and, greedy, the same engine without
HTTP (``DecodeEngine`` in this process, ``zoo api``'s threads, clients that submit their next sentence when one is
done) shows what the HTTP layer costs.

    python benchmarks/serve_load.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import torch

from datamodules.parallel_corpus import load_parallel
from zoo import load_pretrained
from zoo.cli.api import default_threads
from zoo.modules.compute_types import decoding_copy, resolved_compute_type
from zoo.serving.engine import DecodeEngine, Job

REPO = Path(__file__).resolve().parents[1]
MODEL = "transformer-multi30k-en-fr"
CHAR_MODEL = "char-rnn-shakespeare"  # streams its generations


def start_server(batching: bool, compute_type: str = "default") -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "zoo", "api", "--pretrained", MODEL, "--pretrained", CHAR_MODEL]
    command += ["--port", str(port), "--compute-type", compute_type]
    server = subprocess.Popen(command + ([] if batching else ["--no-batching"]), cwd=REPO, stdout=subprocess.PIPE)
    server.stdout.readline()  # "zoo api: 1 model(s) on ..."
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/health", timeout=1)
            return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("zoo api did not come up")


async def load(url: str, sentences: list[str], clients: int, options: dict) -> dict:
    """``clients`` tasks share the sentences, each sending one at a time: throughput and latency percentiles."""
    queue = list(enumerate(sentences))
    latencies, answers = [], {}

    async def client(http: httpx.AsyncClient):
        while queue:
            i, sentence = queue.pop()
            start = time.perf_counter()
            reply = await http.post(f"{url}/translate", json={"model": MODEL, "text": sentence, **options})
            latencies.append(time.perf_counter() - start)
            answers[i] = reply.json()["translations"][0]["text"] if reply.status_code == 200 else None

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        before = (await http.get(f"{url}/health")).json()["engines"][MODEL]
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - start
        after = (await http.get(f"{url}/health")).json()["engines"][MODEL]
    q = statistics.quantiles(latencies, n=100)
    steps = max(1, after["steps"] - before["steps"])
    return {
        "sentences_per_s": len(sentences) / seconds,
        "p50": statistics.median(latencies),
        "p95": q[94],
        "p99": q[98],
        "busy": (after["busy_seconds"] - before["busy_seconds"]) / seconds,
        "rows_per_step": (after["row_steps"] - before["row_steps"]) / steps,
        "answers": [answers[i] for i in range(len(sentences))],
    }


def without_http(sentences: list[str], clients: int) -> dict:
    """The server's engine in this process, on `zoo api`'s threads, greedy: ``clients`` submitters, each sending
    its next sentence from the engine's thread when its last one is done."""
    model = decoding_copy(load_pretrained(MODEL), "default")
    threads = torch.get_num_threads()
    torch.set_num_threads(default_threads())  # as `zoo api`
    engine, todo, done = DecodeEngine(model), list(sentences), threading.Event()
    answered = []

    def submit_next() -> None:
        if todo:
            job = Job([model.bos_id], {}, src=model.encode_sources([todo.pop()])[0].ids + [model.eos_id])
            job.on_finished = finished
            engine.submit(job)

    def finished() -> None:
        answered.append(True)
        submit_next()
        if len(answered) == len(sentences):
            done.set()

    try:
        start = time.perf_counter()
        for _ in range(clients):
            submit_next()
        done.wait()
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return {
        "sentences_per_s": len(sentences) / seconds,
        "busy": engine.load.busy_seconds / seconds,
        "rows_per_step": engine.load.row_steps / max(1, engine.load.steps),
    }


def first_characters_seconds(url: str, rounds: int = 10) -> float:
    """Median time from sending a streamed 500-character generation to its first event, the server idle."""
    times = []
    body = {"model": CHAR_MODEL, "prompt": "ROMEO:", "length": 500, "strategy": "sample", "stream": True}
    for _ in range(rounds):
        start = time.perf_counter()
        with httpx.stream("POST", f"{url}/generate", json=body, timeout=60) as reply:
            next(line for line in reply.iter_lines() if line.startswith("data: "))
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def offline(sentences: list[str], options: dict, compute_type: str = "default") -> tuple[float, list[str]]:
    model = decoding_copy(load_pretrained(MODEL), compute_type)  # as `zoo api` decodes
    start = time.perf_counter()
    out = []
    for i in range(0, len(sentences), 64):
        out += [n[0][0] for n in model.translate_n_best(sentences[i : i + 64], **options)]
    return len(sentences) / (time.perf_counter() - start), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 sentences, concurrency 1, 8 and 32, greedy only")
    args = parser.parse_args()
    test = load_parallel("multi30k", "en-fr", "test").src
    sentences = test[:128] if args.quick else test[:512]
    concurrency = (1, 8, 32) if args.quick else (1, 8, 32, 128)
    strategies = {"greedy": {}} if args.quick else {"greedy": {}, "beam 5": {"strategy": "beam", "beam_size": 5}}
    rows, summary = [], {"compute_type": resolved_compute_type("default", load_pretrained(MODEL))}
    print(f"compute type (zoo api's default on this CPU): {summary['compute_type']}")
    for strategy, options in strategies.items():
        ceiling, expected = offline(sentences, options)
        ceilings, results = [ceiling], {}
        for batching in (True, False):
            server, url = start_server(batching)
            try:
                if batching and strategy == "greedy":
                    summary["first_characters_s"] = round(first_characters_seconds(url), 4)
                    print(
                        f"streaming: first characters of a 500-character generation after "
                        f"{summary['first_characters_s'] * 1000:.0f} ms (median of 10, server idle)"
                    )
                for clients in concurrency:
                    result = asyncio.run(load(url, sentences, clients, options))
                    result["equal"] = sum(a == b for a, b in zip(result.pop("answers"), expected))
                    results[batching, clients] = result
            finally:
                server.terminate()
                server.wait()
            ceilings.append(offline(sentences, options)[0])  # after each server too: the machine's speed drifts
        alone_32 = without_http(sentences, 32) if strategy == "greedy" else None
        ceiling = statistics.median(ceilings)
        print(
            f"\n{strategy}: {len(sentences)} sentences, offline translate {ceiling:.1f} sentences/s "
            f"(median of {', '.join(f'{c:.1f}' for c in ceilings)}: before, between and after the servers)"
        )
        print(
            f"{'server':<16}{'clients':>8}{'sent/s':>9}{'of offline':>11}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}"
            f"{'= offline':>10}{'busy':>6}{'rows/step':>10}"
        )
        for (batching, clients), r in results.items():
            name = "batching" if batching else "one at a time"
            print(
                f"{name:<16}{clients:>8}{r['sentences_per_s']:>9.1f}{r['sentences_per_s'] / ceiling:>10.0%}"
                f"{r['p50']:>8.3f}{r['p95']:>8.3f}{r['p99']:>8.3f}{r['equal']:>7}/{len(sentences)}"
                f"{r['busy']:>6.0%}{r['rows_per_step']:>10.1f}"
            )
        if alone_32 is not None:
            print(
                f"{'engine, no HTTP':<16}{32:>8}{alone_32['sentences_per_s']:>9.1f}"
                f"{alone_32['sentences_per_s'] / ceiling:>10.0%}{'':>34}{alone_32['busy']:>6.0%}"
                f"{alone_32['rows_per_step']:>10.1f}"
            )
        at32, alone = results[True, 32], results[True, 1]
        summary[strategy] = {
            "offline_per_s": round(ceiling, 1),
            "batching_32_per_s": round(at32["sentences_per_s"], 1),
            "share_of_offline_32": round(at32["sentences_per_s"] / ceiling, 3),
            "vs_no_batching_32": round(at32["sentences_per_s"] / results[False, 32]["sentences_per_s"], 2),
            "p95_32_over_p50_1": round(at32["p95"] / alone["p50"], 2),
            "busy_32": round(at32["busy"], 3),
        }
        if alone_32 is not None:
            summary[strategy]["engine_without_http_32_per_s"] = round(alone_32["sentences_per_s"], 1)
        rows.append(summary[strategy])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
