"""Does `zoo api` hold for minutes under load? 32 clients for 5 minutes: real sentences, malformed requests,
and clients that disconnect mid-stream; every valid answer checked against offline decoding, the server's
resident memory sampled throughout.

Each client (an asyncio task on this machine, as in serve_load.py) loops until the time is up, and per request
draws: 10% malformed (bad JSON, an unknown field, a wrong type, an unknown model, a beam too wide: each must
answer 4xx with a JSON error), 5% a streamed 2,000-character generation from the char model that the client
drops after a few events (its rows must leave the batch), 15% a beam-5 translation, else a greedy one, of a
test_2016_flickr sentence. Offline answers: `translate_n_best` in batches of 64 in this process, in the compute
type `zoo api` decodes in by default.

    python benchmarks/serve_soak.py [--quick] [--minutes M]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections import Counter

import httpx
from serve_load import CHAR_MODEL, MODEL, offline, start_server

from datamodules.parallel_corpus import load_parallel
from zoo import load_pretrained
from zoo.modules.compute_types import resolved_compute_type

CLIENTS = 32
BEAM = {"strategy": "beam", "beam_size": 5}
STRATEGIES = {"greedy": {}, "beam 5": BEAM}
MALFORMED = [  # (what is wrong, raw body or JSON body)
    ("bad JSON", b'{"model": "x", "text": '),
    ("unknown field", {"model": MODEL, "text": "A dog.", "colour": "blue"}),
    ("wrong type", {"model": MODEL, "text": 5}),
    ("unknown model", {"model": "no-such-model", "text": "A dog."}),
    ("beam too wide", {"model": MODEL, "text": "A dog.", "strategy": "beam", "beam_size": 1000}),
]


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def says_error(reply: httpx.Response) -> bool:
    """Whether the reply is the API's JSON error, ``{"error": message}`` (not a traceback, not HTML)."""
    try:
        return isinstance(reply.json().get("error"), str)
    except ValueError:
        return False


async def soak(url: str, sentences: list[str], expected: dict, seconds: float, server_pid: int) -> dict:
    outcomes: Counter = Counter()
    latencies: list[float] = []
    memory: list[tuple[float, float]] = []  # (seconds since start, MB)
    start = time.perf_counter()
    end = start + seconds

    async def client(http: httpx.AsyncClient, draw: random.Random) -> None:
        while time.perf_counter() < end:
            kind = draw.random()
            try:
                if kind < 0.10:
                    what, body = draw.choice(MALFORMED)
                    if isinstance(body, bytes):
                        reply = await http.post(
                            f"{url}/translate", content=body, headers={"content-type": "application/json"}
                        )
                    else:
                        reply = await http.post(f"{url}/translate", json=body)
                    good = 400 <= reply.status_code < 500 and says_error(reply)
                    outcomes["malformed answered 4xx with a message" if good else f"malformed ({what}): WRONG"] += 1
                elif kind < 0.15:
                    body = {"model": CHAR_MODEL, "prompt": "ROMEO:", "length": 2000, "strategy": "sample"}
                    async with http.stream("POST", f"{url}/generate", json={**body, "stream": True}) as reply:
                        events = 0
                        async for line in reply.aiter_lines():
                            events += line.startswith("data: ")
                            if events == 3:
                                break  # the client goes away mid-stream
                    outcomes["streams dropped after 3 events"] += 1
                else:
                    i = draw.randrange(len(sentences))
                    strategy = "beam 5" if kind < 0.30 else "greedy"
                    options = BEAM if strategy == "beam 5" else {}
                    sent = time.perf_counter()
                    reply = await http.post(f"{url}/translate", json={"model": MODEL, "text": sentences[i], **options})
                    latencies.append(time.perf_counter() - sent)
                    if reply.status_code != 200:
                        outcomes[f"{strategy}: status {reply.status_code}"] += 1
                    elif reply.json()["translations"][0]["text"] == expected[strategy][i]:
                        outcomes[f"{strategy}: equal to offline"] += 1
                    else:
                        outcomes[f"{strategy}: DIFFERENT from offline"] += 1
            except httpx.HTTPError as error:
                outcomes[f"transport error ({type(error).__name__})"] += 1

    async def watch() -> None:
        while time.perf_counter() < end:
            memory.append((time.perf_counter() - start, resident_mb(server_pid)))
            await asyncio.sleep(5)

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(watch(), *(client(http, random.Random(seed)) for seed in range(CLIENTS)))
        health = (await http.get(f"{url}/health")).status_code
    return {"outcomes": outcomes, "latencies": latencies, "memory": memory, "health": health}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 minute")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--compute-type", default="default", help="zoo api's, and offline decoding's (default: theirs)")
    args = parser.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    sentences = load_parallel("multi30k", "en-fr", "test").src[:256]
    compute_type = resolved_compute_type(args.compute_type, load_pretrained(MODEL))
    expected = {strategy: offline(sentences, options, compute_type)[1] for strategy, options in STRATEGIES.items()}
    server, url = start_server(batching=True, compute_type=compute_type)
    try:
        result = asyncio.run(soak(url, sentences, expected, minutes * 60, server.pid))
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait()
    memory = result["memory"]
    first = [mb for t, mb in memory if t <= 60] or [memory[0][1]]
    last = [mb for t, mb in memory if t >= memory[-1][0] - 60]
    growth = statistics.median(last) / statistics.median(first) - 1
    print(f"\n{CLIENTS} clients for {minutes:g} minutes, {len(sentences)} test_2016_flickr sentences, {compute_type}")
    print(f"{'outcome':<48}{'requests':>9}")
    for outcome, count in sorted(result["outcomes"].items()):
        print(f"{outcome:<48}{count:>9}")
    q = statistics.quantiles(result["latencies"], n=100)
    print(f"translation latency: p50 {statistics.median(result['latencies']):.3f} s, p95 {q[94]:.3f}, p99 {q[98]:.3f}")
    print(
        f"server resident memory: {statistics.median(first):.0f} MB in the first minute, "
        f"{statistics.median(last):.0f} MB in the last ({growth:+.1%}); alive at the end: {alive}, "
        f"/health {result['health']}"
    )
    outcomes = result["outcomes"]
    wrong = sum(n for outcome, n in outcomes.items() if "WRONG" in outcome or "DIFFERENT" in outcome)
    failed = sum(n for outcome, n in outcomes.items() if "status" in outcome or "transport" in outcome)
    summary = {
        "benchmark": "serve_soak",
        "minutes": minutes,
        "compute_type": compute_type,
        "requests": sum(outcomes.values()),
        "wrong_answers": wrong,
        "failed_requests": failed,
        "memory_growth": round(growth, 4),
        "alive": alive,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
