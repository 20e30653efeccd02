"""The edge link benchmark in a tiny configuration, so the script cannot rot: every transport it
knows runs a few hundred events between two real processes on loopback and prints its line (the
Rust-only figure is left out: its example is built by ``cargo test``)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "edge_link.py"


@pytest.mark.parametrize("transport", ["udp", "tcp", "zenoh-peer"])
def test_edge_link_benchmark_smoke(transport):
    if transport == "zenoh-peer":
        pytest.importorskip("zenoh", reason="eclipse-zenoh (the test and bench extras) runs the peer")
    cmd = [sys.executable, str(SCRIPT), "--transports", transport, "--runs", "1", "--events", "300", "--chunk", "50",
           "--warmup", "100", "--latency-events", "50", "--gap-us", "100", "--idle-s", "2", "--no-rust"]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["transports"] == [transport]
    (result,) = [line for line in lines if "transport" in line]
    assert result["transport"] == transport
    assert result["events_per_s"] > 0 and 0 < result["p50_us"] <= result["p99_us"]
    assert result["runs"] == 1 and result["payload_bytes"] == 8
    assert result["latency_lost"] == [0] and result["lost"] == [0]


def test_edge_link_benchmark_zenoh_smoke():
    """Our nodes through a Zenoh router and raw Zenoh clients through one run in the same
    invocation, and the zenoh line carries vs_raw (ours / raw)."""
    pytest.importorskip("zenoh", reason="eclipse-zenoh (the test and bench extras) runs the raw clients")
    from manyfold import _native

    assert _native.ZENOH, "this build of the extension has no Zenoh transport"
    cmd = [sys.executable, str(SCRIPT), "--transports", "zenoh,zenoh-raw", "--runs", "1", "--events", "300", "--chunk", "50",
           "--warmup", "100", "--latency-events", "50", "--gap-us", "100", "--idle-s", "2", "--no-rust"]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {line["transport"]: line for line in map(json.loads, out.stdout.splitlines()) if "transport" in line}
    assert sorted(lines) == ["zenoh", "zenoh-raw"]
    for line in lines.values():
        assert line["events_per_s"] > 0 and line["lost"] == [0] and line["latency_lost"] == [0]
    assert lines["zenoh"]["vs_raw"] == round(lines["zenoh"]["events_per_s"] / lines["zenoh-raw"]["events_per_s"], 2)
