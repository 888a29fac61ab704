"""How long each shipped pretrained model takes to load (zoo.load_pretrained: SHA256SUMS checked, every file hashed
once, safetensors into the model), in a process that has imported zoo already; the zoo's target is 2 seconds.

    python benchmarks/pretrained_load_time.py [--rounds 5] [--quick]

The reference in the same run: reading the same files' bytes (what any loader must at least do).
"""

from __future__ import annotations

import argparse
import json
import statistics

from decoding_speed import timed  # the sibling script

import zoo
from zoo.hub.pretrained import PACKAGE_DIR, registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    results = {}
    print(f"{'model':<30}{'load (s)':>10}{'read bytes (s)':>16}{'ratio':>8}")
    for name, entry in registry().items():
        folder = PACKAGE_DIR / entry["url"].removeprefix("package:")
        loads, reads = [], []
        for _ in range(rounds):  # alternated, so drift hits both alike
            loads.append(timed(lambda: zoo.load_pretrained(name)))
            reads.append(timed(lambda: [(folder / f).read_bytes() for f in entry["files"]]))
        load, read = statistics.median(loads), statistics.median(reads)
        results[name] = round(load, 3)
        print(f"{name:<30}{load:>10.3f}{read:>16.4f}{load / read:>8.0f}x")
    print(json.dumps({"median_load_seconds": results, "slowest": max(results.values()), "target": 2.0}))


if __name__ == "__main__":
    main()
