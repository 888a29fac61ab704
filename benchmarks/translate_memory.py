"""Does `zoo translate` stream? Peak memory and time to the first output line for 1, 10 and 50 MB inputs.

The inputs are Multi30k's English training captions repeated to the size. Two contenders, alternating
per size, each in a fresh process (peak memory is per process):
  - streaming: `zoo translate --pretrained transformer-multi30k-en-fr --beam-size 1 --input FILE`, run for
    ``--seconds`` and then stopped with SIGINT, as a user's Ctrl-C; its peak resident set (VmHWM), when its
    first line came out, how many lines it wrote, and whether the stop left exactly those lines, whole;
  - read-all (the reference: what `zoo translate` did before it streamed): the same model loaded, every
    line read into a list and tokenized for its length, as the old command did before its first batch
    (which then also held every output until the end); its peak resident set.
Both report their peak resident set; a process that only loads the model is measured beside them, so
what the input adds can be read off.

    ZOO_DATA_DIR=../shared/data python benchmarks/translate_memory.py [--quick] [--seconds 60]

--quick: 1 and 10 MB, 25 s each. The last line is JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "transformer-multi30k-en-fr"
READ_ALL = r"""
import json, resource, sys
from zoo import load_pretrained
from zoo.cli.text_lines import read_lines
from pathlib import Path
model = load_pretrained(sys.argv[1])
if len(sys.argv) > 2:
    lines = read_lines(Path(sys.argv[2]))
    lengths = [len(e.ids) for e in model.encode_sources(lines)]
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build_input(path: Path, megabytes: int, captions: list[str]) -> int:
    """Captions repeated until the file holds ``megabytes`` MB; the number of lines."""
    lines, size, target = 0, 0, megabytes * 1_000_000
    with open(path, "w", encoding="utf-8") as out:
        while size < target:
            for caption in captions:
                out.write(caption + "\n")
                size += len(caption.encode()) + 1
                lines += 1
                if size >= target:
                    break
    return lines


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_all(path: Path | None) -> float:
    args = [sys.executable, "-c", READ_ALL, MODEL, *([str(path)] if path else [])]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def streaming(path: Path, seconds: float, out_path: Path) -> dict:
    command = [sys.executable, "-m", "zoo", "translate", "--pretrained", MODEL, "--beam-size", "1"]
    start = time.perf_counter()
    err_path = out_path.with_suffix(".err")  # a file, not a pipe: the progress bar would fill a pipe and block
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen([*command, "--input", str(path)], cwd=REPO, stdout=out, stderr=err)
        first_line, peak = None, 0.0
        while time.perf_counter() - start < seconds and process.poll() is None:
            peak = max(peak, peak_mb(process.pid))
            if first_line is None and out_path.stat().st_size:
                first_line = time.perf_counter() - start
            time.sleep(0.05)
        if process.poll() is None:
            peak = max(peak, peak_mb(process.pid))
            process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    stderr = err_path.read_text(encoding="utf-8").replace("\r", "\n")
    written = out_path.read_text(encoding="utf-8")
    said = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    lines = written.count("\n")
    whole = written.endswith("\n") and (f"lines 1-{lines} are written" in said or process.returncode == 0)
    return {"peak_mb": peak, "first_line_s": first_line, "lines": lines, "rc": process.returncode, "whole": whole}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None, help="how long each streaming run goes (60; quick 25)")
    args = parser.parse_args()
    data = os.environ.get("ZOO_DATA_DIR")
    if not data:
        sys.exit("set ZOO_DATA_DIR to the folder holding multi30k/ (../shared/data)")
    sizes = [1, 10] if args.quick else [1, 10, 50]
    seconds = args.seconds or (25 if args.quick else 60)
    with gzip.open(Path(data) / "multi30k" / "train.en.gz", "rt", encoding="utf-8") as file:
        captions = file.read().splitlines()
    base = read_all(None)  # the model alone
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for megabytes in sizes:
            path = Path(work) / f"input-{megabytes}mb.en"
            n = build_input(path, megabytes, captions)
            stream = streaming(path, seconds, Path(work) / "out.fr")
            reference = read_all(path)
            rows.append(
                {
                    "mb": megabytes,
                    "lines": n,
                    "streaming_mb": round(stream["peak_mb"]),
                    "read_all_mb": round(reference),
                    "first_line_s": round(stream["first_line_s"], 2) if stream["first_line_s"] else None,
                    "written": stream["lines"],
                    "rc": stream["rc"],
                    "prefix_whole": stream["whole"],
                }
            )
            path.unlink()
    print(f"peak resident MB (the model alone: {base:.0f}); streaming runs {seconds:.0f} s, then SIGINT")
    print(
        f"{'input':>6} {'lines':>9} {'streaming MB':>13} {'read-all MB':>12} {'first line s':>13} {'written':>8} {'rc':>4} {'whole':>6}"
    )
    for r in rows:
        print(
            f"{r['mb']:>4}MB {r['lines']:>9,} {r['streaming_mb']:>13} {r['read_all_mb']:>12} "
            f"{r['first_line_s']!s:>13} {r['written']:>8,} {r['rc']:>4} {r['prefix_whole']!s:>6}"
        )
    print(json.dumps({"model_mb": round(base, 1), "seconds": seconds, "sizes": rows}))


if __name__ == "__main__":
    main()
