"""DurableQueue append+ack throughput and p99 append latency, beside the raw engine.

For each batch size (commits per 1, 64 and 1024 messages) the Rust example
``runtime_std/examples/durable_queue_bench.rs`` runs, in one process and alternating round by
round so both see the same machine load:

- **queue**: a ``durable_queue`` node (``commit_every`` = batch) in a virtual-clock graph with a
  store directory; a producer appends 64-byte messages, a subscriber collects the deliveries, and
  after each batch the producer acks them (acks ride along with the next commit).
- **raw**: rusqlite alone on its own file at the same durability (WAL, ``synchronous`` FULL or
  NORMAL): per batch one transaction inserting the batch's rows and deleting the previous batch's
  rows (their acks), with cached prepared statements.

One JSON line per batch size (medians of ``--rounds``):
``{"batch": N, "events_per_s": N, "raw_events_per_s": N, "p99_append_us": N, ...}`` plus
``ratio`` (median of the per-round queue/raw ratios), ``raw_p99_append_us``, ``messages``,
``rounds`` and ``sync``. Target (issue 14): ``events_per_s >= 0.5 * raw_events_per_s`` at every
batch size. Run from the repository root:

    python benchmarks/durable_queue.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (1, 64, 1024)
BUILD_TIMEOUT_S = 900
RUN_TIMEOUT_S = 900


def bench_binary() -> Path:
    """Builds (if needed) and returns the release build of the bench example."""
    cmd = ["cargo", "build", "--release", "--quiet", "-p", "manyfold-runtime", "--example", "durable_queue_bench"]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=BUILD_TIMEOUT_S)
    return ROOT / "target" / "release" / "examples" / "durable_queue_bench"


def messages_for(batch: int, scale: float) -> int:
    """Messages per round: enough commits to time (>= 2 batches, a whole number of them)."""
    base = {1: 3_000, 64: 64_000}.get(batch, 200 * batch)
    return max(2 * batch, int(base * scale) // batch * batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="comma-separated commit batch sizes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the messages per round (0.01 for a smoke run)")
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    args = parser.parse_args()
    binary = bench_binary()
    with tempfile.TemporaryDirectory(prefix="durable-queue-bench-") as tmp:
        for batch in (int(b) for b in args.batches.split(",")):
            cmd = [str(binary), tmp, str(batch), str(messages_for(batch, args.scale)), str(args.rounds), args.sync]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=RUN_TIMEOUT_S).stdout
            line = json.loads(out.strip().splitlines()[-1])
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
