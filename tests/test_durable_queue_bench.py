"""The DurableQueue benchmark runs end to end on a tiny workload and prints one line per batch size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "durable_queue.py"


def test_durable_queue_benchmark_smoke():
    """Each batch size gives queue and raw rates, a p99 append latency, and the ratio between them."""
    cmd = [sys.executable, str(SCRIPT), "--batches", "1,64", "--rounds", "1", "--scale", "0.02", "--sync", "normal"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["batch"] for line in lines] == [1, 64]
    for line in lines:
        assert line["events_per_s"] > 0 and line["raw_events_per_s"] > 0 and line["p99_append_us"] > 0
        assert line["ratio"] > 0 and line["rounds"] == 1 and line["sync"] == "normal"
