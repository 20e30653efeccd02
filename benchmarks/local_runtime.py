"""Local runtime throughput: per-event and batch publishing through a built-in moving average.

Workloads (one JSON line each, ``{"workload": ..., "events_per_s": ...}``):

1. ``publish_mavg_subscribe``: a Python loop calls ``producer.publish(route, float)`` per event;
   a built-in moving average over the last 3 values (Rust); a Python subscriber counts the
   output envelopes. 500k events after a 20k warm-up.
2. ``batch_mavg``: the same pipeline fed by ``producer.publish_many(route, list_of_floats)``
   (100k floats per call), counted by a native counter. It takes the fused batch path
   (runtime_std/src/graph/fused.rs); ``batch_mavg_unfused`` is the same workload with fusion
   off (the per-event loop), run alternately with it in the same process as its same-run peer.
3. ``batch_mavg_rust``: workload 2 in Rust alone (``cargo run --release --example local_bench``),
   to separate the engine's cost from the Python boundary (fused, and unfused as its peer).

Peer (same run, same machine): manyfold 0.1.42 from PyPI, installed in its own virtualenv
(``--peer``; created under ``benchmarks/.peer-venv`` on first use), running its
``observe -> moving_average -> subscribe`` pipeline and a bare per-event publish with one
subscriber.

Targets (issue 3): workload 1 >= 500k events/s, workload 2 >= 10M events/s. Medians of
``--rounds`` rounds. Run from the repository root after ``pip install -e .``:

    python benchmarks/local_runtime.py --peer
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "benchmarks" / ".peer-venv"
PEER_VERSION = "0.1.42"


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


def per_event(events: int, warmup: int) -> float:
    from manyfold.graph import FLOAT, Graph, Layer, Plane, Route

    g = Graph()
    temp = g.route(Route(Plane.READ, Layer.LOGICAL, "sensor", "env", "temperature"), FLOAT)
    avg = g.moving_average(temp, 3)
    count = [0]

    def on_output(envelope) -> None:
        count[0] += 1

    g.subscribe(avg.output, on_output)
    publish = g.producer("sensor").publish
    for i in range(warmup):
        publish(temp, float(i))
    values = [float(i) for i in range(events)]
    start = time.perf_counter()
    for v in values:
        publish(temp, v)
    elapsed = time.perf_counter() - start
    assert count[0] == warmup + events - 2, count[0]
    return events / elapsed


def batch(events: int, chunk: int, fused: bool = True) -> float:
    from manyfold.graph import FLOAT, Graph, Layer, Plane, Route

    g = Graph()
    g._native._set_fusion(fused)
    temp = g.route(Route(Plane.READ, Layer.LOGICAL, "sensor", "env", "temperature"), FLOAT)
    avg = g.moving_average(temp, 3)
    counter = g.count(avg.output)
    producer = g.producer("sensor")
    chunks = [[float(i) for i in range(k, k + chunk)] for k in range(0, events, chunk)]
    producer.publish_many(temp, chunks[0])  # warm-up
    start = time.perf_counter()
    for c in chunks:
        producer.publish_many(temp, c)
    elapsed = time.perf_counter() - start
    assert counter.value == chunk + events - 2
    assert g._native._fusion_stats()[0 if fused else 1] == len(chunks) + 1
    return events / elapsed


def rust_batch() -> list[dict]:
    cmd = ["cargo", "run", "--release", "--quiet", "-p", "manyfold-runtime", "--example", "local_bench", "--", "2000000"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.strip().splitlines() if line.startswith("{")]


PEER_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import manyfold as mf
    events, rounds = int(sys.argv[1]), int(sys.argv[2])
    def mavg():
        r = mf.route(owner="sensor", family="env", stream="temperature", schema=mf.Schema.float(name="temperature"))
        g = mf.Graph()
        n = [0]
        g.observe(r, replay_latest=False).moving_average(window_size=3).connect(lambda v: n.__setitem__(0, n[0] + 1))
        for i in range(1000):
            g.publish(r, float(i))
        start = time.perf_counter()
        for i in range(events):
            g.publish(r, float(i))
        return events / (time.perf_counter() - start)
    def bare():
        r = mf.route(owner="sensor", family="env", stream="temperature", schema=mf.Schema.float(name="temperature"))
        g = mf.Graph()
        n = [0]
        g.observe(r, replay_latest=False).connect(lambda v: n.__setitem__(0, n[0] + 1))
        for i in range(1000):
            g.publish(r, float(i))
        start = time.perf_counter()
        for i in range(events):
            g.publish(r, float(i))
        return events / (time.perf_counter() - start)
    print(json.dumps({"mavg": statistics.median(mavg() for _ in range(rounds)),
                      "bare": statistics.median(bare() for _ in range(rounds))}))
    """
)


def peer(events: int, rounds: int) -> dict | None:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PEER_VENV} with manyfold=={PEER_VERSION} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"manyfold=={PEER_VERSION}"], check=True)
    out = subprocess.run([str(python), "-c", PEER_SCRIPT, str(events), str(rounds)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batch-events", type=int, default=5_000_000)
    parser.add_argument("--peer", action="store_true", help=f"also run manyfold {PEER_VERSION} from PyPI in its own virtualenv")
    parser.add_argument("--no-rust", action="store_true", help="skip the Rust-only figure (needs cargo)")
    args = parser.parse_args()

    w1 = statistics.median(per_event(args.events, 20_000) for _ in range(args.rounds))
    emit({"workload": "publish_mavg_subscribe", "events_per_s": round(w1), "events": args.events, "rounds": args.rounds, "target": 500_000})
    # Fused and unfused alternate round by round, so both see the same machine load.
    fused, unfused = [], []
    for _ in range(args.rounds):
        fused.append(batch(args.batch_events, 100_000, fused=True))
        unfused.append(batch(args.batch_events, 100_000, fused=False))
    w2 = statistics.median(fused)
    emit({"workload": "batch_mavg", "events_per_s": round(w2), "events": args.batch_events, "rounds": args.rounds, "target": 10_000_000})
    emit({"workload": "batch_mavg_unfused", "events_per_s": round(statistics.median(unfused)), "events": args.batch_events, "rounds": args.rounds})
    if not args.no_rust:
        for line in rust_batch():
            emit({**line, "events": 2_000_000, "rounds": 5})
    if args.peer:
        result = peer(min(args.events, 50_000), args.rounds)
        emit({"workload": "publish_mavg_subscribe", "peer": f"manyfold {PEER_VERSION}", "events_per_s": round(result["mavg"])})
        emit({"workload": "publish_subscribe_bare", "peer": f"manyfold {PEER_VERSION}", "events_per_s": round(result["bare"])})
        emit({"comparison": "publish_mavg_subscribe ours/peer", "ratio": round(w1 / result["mavg"], 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
