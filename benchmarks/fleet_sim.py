"""Fleet simulation: greenhouse sensor boards feeding one host graph, simulated seconds per wall
second for 10, 100 and 1,000 boards (``manyfold.sim.fleet``), beside the same boards opened one
by one with ``manyfold.sim.open`` behind ``DeviceBridge``s (tests/devices/reference_fleet.py),
measured in the same run.

One JSON line per fleet size and implementation (after a first line describing the run)::

    {"boards": N, "fleet": "core" | "sim.open", "sim_s_per_wall_s": X, "events_per_s": N,
     "board_s_per_wall_s": N, "step_us": N, "sim_s": N, "wall_s": N, "runs": N, ...}

What runs: the system of ``manyfold demo fleet`` (``manyfold.demos.fleet_system``): every board
runs the greenhouse sensor partition (seeded per board), in lockstep steps of ``--step-ms``; the
host graph gets every host-bound event (about 7 per board per simulated second) through the UART
uplinks into fleet-wide windows and native counters. Each run builds a fresh fleet and graph,
warms up ``--warmup-s`` simulated seconds, then times ``--seconds``. ``events_per_s`` counts the
events the host graph's uplinks received while timed, per wall second. Figures are medians over
``--runs`` runs; implementations alternate run by run so they see the same machine load. The
``sim.open`` peer runs ``--peer-seconds`` (it is Python per board and per event, and slow).

Run from the repository root after ``pip install -e .``::

    python benchmarks/fleet_sim.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import machine  # benchmarks/machine.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "devices"))  # the sim.open peer: the fleet's test oracle


def build(kind: str, boards: int, step_us: int):
    """A fresh fleet of ``kind`` ("core" or "sim.open") feeding a fresh host graph, and the
    graph's uplink counters."""
    from manyfold import sim
    from manyfold.demos import fleet_system as fs

    m = fs.fleet_manifest(step_us)
    graph = fs.host_graph(m)
    counters = [graph.count(r) for r in fs.uplink_routes(m)]
    if kind == "core":
        fleet = sim.fleet(m, boards, seeds=1, partition=fs.DEVICE, graph=graph, step_us=step_us)
    else:
        import reference_fleet

        fleet = reference_fleet.fleet(m, boards, seeds=1, partition=fs.DEVICE, graph=graph, step_us=step_us)
    return fleet, counters


def one_run(kind: str, boards: int, step_us: int, warmup_s: float, seconds: float) -> dict:
    fleet, counters = build(kind, boards, step_us)
    fleet.run_to(int(warmup_s * 1_000_000))
    before = sum(c.value for c in counters)
    t0 = time.perf_counter()
    fleet.run_to(fleet.now_us + int(seconds * 1_000_000))
    wall = time.perf_counter() - t0
    events = sum(c.value for c in counters) - before
    return {"sim_s": seconds, "wall_s": wall, "events": events}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", default="10,100,1000", help="fleet sizes, comma separated (default 10,100,1000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds timed per run (default 60)")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="simulated seconds before timing (default 5)")
    parser.add_argument("--step-ms", type=int, default=100, help="lockstep step in milliseconds (default 100)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; figures are medians (default 3)")
    parser.add_argument("--fleets", default="core,sim.open", help="implementations: core (sim.fleet), sim.open (N boards, the peer)")
    parser.add_argument("--peer-seconds", type=float, default=10.0, help="simulated seconds timed for the sim.open peer (default 10)")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.boards.split(",") if n]
    kinds = [k for k in args.fleets.split(",") if k]
    for kind in kinds:
        if kind not in ("core", "sim.open"):
            parser.error(f"--fleets takes core and sim.open, not {kind!r}")
    step_us = args.step_ms * 1000
    print(json.dumps({"benchmark": "fleet_sim", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      **machine.describe(), "boards": sizes, "fleets": kinds, "step_us": step_us, "runs": args.runs,
                      "seconds": args.seconds, "peer_seconds": args.peer_seconds, "warmup_s": args.warmup_s}), flush=True)  # fmt: skip
    for boards in sizes:
        results: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for _ in range(args.runs):
            for kind in kinds:
                seconds = args.seconds if kind == "core" else args.peer_seconds
                results[kind].append(one_run(kind, boards, step_us, args.warmup_s, seconds))
        for kind in kinds:
            runs = results[kind]
            x = statistics.median(r["sim_s"] / r["wall_s"] for r in runs)
            eps = statistics.median(r["events"] / r["wall_s"] for r in runs)
            print(json.dumps({
                "boards": boards, "fleet": kind, "sim_s_per_wall_s": round(x, 2), "events_per_s": round(eps),
                "board_s_per_wall_s": round(boards * x), "step_us": step_us, "sim_s": runs[0]["sim_s"],
                "wall_s": round(statistics.median(r["wall_s"] for r in runs), 4), "events": statistics.median(r["events"] for r in runs),
                "runs": len(runs), "sim_s_per_wall_s_all": [round(r["sim_s"] / r["wall_s"], 2) for r in runs],
            }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
