"""Frame layer throughput: the Python API beside the Rust crate alone.

Prints one JSON line per (layer, operation, message size) with the median MB/s (10^6 message
bytes per second) over several rounds, then one line per size with the Python/Rust decode ratio.
Decoding feeds a 16 MiB stream in 4 KiB reads, as a serial or TCP reader would; encoding frames
one message per call.

Targets (issue 2): Rust decode >= 500 MB/s for 1 KiB messages; Python API within 3x of Rust for
1 KiB. Run from the repository root after `pip install -e .`:

    python benchmarks/framing.py
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from manyfold.framing import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 9
STREAM_BYTES = 16 * 1024 * 1024
READ_LEN = 4096


def python_rates(size: int) -> dict[str, float]:
    rng = random.Random(size)
    messages = [rng.randbytes(size) for _ in range(64)]
    count = STREAM_BYTES // size
    payload = count * size
    encode, decode = [], []
    stream = b""
    for _ in range(ROUNDS):
        start = time.perf_counter()
        frames = [encode_frame(messages[i % 64]) for i in range(count)]
        encode.append(payload / (time.perf_counter() - start) / 1e6)
        stream = b"".join(frames)
    view = memoryview(stream)
    for _ in range(ROUNDS):
        decoder = FrameDecoder()
        decoded = 0
        start = time.perf_counter()
        for offset in range(0, len(stream), READ_LEN):
            decoded += len(decoder.feed(view[offset : offset + READ_LEN]))
        decode.append(payload / (time.perf_counter() - start) / 1e6)
        assert decoded == count and decoder.stats.rejected == 0
    return {"encode": statistics.median(encode), "decode": statistics.median(decode)}


def rust_lines() -> list[dict]:
    command = ["cargo", "run", "--release", "--quiet", "-p", "manyfold-framing", "--features", "alloc", "--example", "throughput"]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main() -> int:
    rust = rust_lines()
    for line in rust:
        print(json.dumps(line))
    rust_decode = {l["message_bytes"]: l["mb_per_s"] for l in rust if l["operation"] == "decode"}
    for size in (32, 1024):
        rates = python_rates(size)
        for operation, rate in rates.items():
            print(json.dumps({"layer": "python", "operation": operation, "message_bytes": size, "mb_per_s": round(rate, 1), "rounds": ROUNDS}))
        ratio = rust_decode[size] / rates["decode"]
        print(json.dumps({"comparison": "decode rust/python", "message_bytes": size, "ratio": round(ratio, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
