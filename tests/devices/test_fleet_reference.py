"""The fleet against its oracle: N boards opened one by one with ``sim.open`` and N
``DeviceBridge``s (tests/devices/reference_fleet.py) build the same host graph as
``manyfold.sim.fleet``; and the oracle itself is N independent boards."""

from __future__ import annotations

import struct

import pytest
from reference_fleet import ReferenceFleet, seeded_spec, session_for

from manyfold import query, sim
from manyfold.demos import fleet_system as fs
from manyfold.devices.lower import partition_image, partition_spec

BOARDS = 4
SECONDS = 6
STEP_US = 100_000


def graph_digest(graph) -> dict:
    """Everything the host graph lets one observe of what it received: every retained envelope
    (producer, seq, event and ingest times, value bits, taints, parents) per route, and the node
    counters."""
    routes = {}
    for info in query.topology(graph).routes:
        envelopes = []
        latest = graph.latest(info.route)
        for seq in range(1, (latest.seq if latest else 0) + 1):
            e = graph.envelope(info.route, seq)
            if e is not None:
                bits = struct.pack("<d", float(e.value)) if isinstance(e.value, (int, float)) else repr(e.value)
                envelopes.append((e.producer, e.seq, e.event_time_us, e.ingest_time_us, bits, e.taint_bits, tuple(map(str, e.parents))))
        routes[str(info.route)] = (info.envelopes, envelopes)
    nodes = {n.name: (n.processed, n.emitted, n.failures, tuple(sorted(n.counters.items()))) for n in graph.node_stats()}
    return {"routes": routes, "nodes": nodes}


def reference(images, sessions, step_us=STEP_US):
    m = fs.fleet_manifest(step_us)
    graph = fs.host_graph(m)
    fleet = ReferenceFleet(images, sessions=sessions, manifest=m, partition=fs.DEVICE, graph=graph, step_us=step_us)
    return fleet, graph


def test_reference_boards_are_independent_sim_open_boards():
    """Board i of the reference fleet sends exactly what a lone sim.open board with its image and
    session sends when stepped through the same ticks: feeding one graph couples nothing."""
    image = partition_image(fs.fleet_manifest(), fs.DEVICE)
    fleet, graph = reference([image] * 3, [5, 6, 7])
    fleet.run(SECONDS)
    lone = sim.open(image, board="lm3s6965evb", session=6)
    lone.connect(lockstep=True, reset=True)
    events = []
    for tick in range(STEP_US, SECONDS * 1_000_000 + 1, STEP_US):
        events += lone.step(tick)
    key = lambda e: (e.route, e.seq, e.time_us, e.taints, struct.pack("<d", float(e.value)))  # noqa: E731
    assert events and [key(e) for e in fleet.events(1)] == [key(e) for e in events]
    uplinked = {str(r.route): r.envelopes for r in query.topology(graph).routes if r.route.owner == "uplink"}
    assert sum(uplinked.values()) == sum(len(fleet.events(i)) for i in range(3)), "every event reached its uplink"


def test_reference_publishes_each_board_as_its_own_producer():
    """Board i's events carry producer greenhouse#i on the host graph."""
    image = partition_image(fs.fleet_manifest(), fs.DEVICE)
    _fleet, graph = reference([image] * 2, [1, 2])
    _fleet.run(2)
    digest = graph_digest(graph)
    producers = {env[0] for _, envs in digest["routes"].values() for env in envs}
    assert {p for p in producers if p[0] != "node"} == {("producer", "greenhouse#0"), ("producer", "greenhouse#1")}


@pytest.mark.parametrize("step_us", [STEP_US, 1_000_000])
def test_fleet_host_graph_equals_n_bridges_in_merge_order(step_us):
    """A fleet feeding the host graph builds the same graph, envelope for envelope, as N sim.open
    boards behind N DeviceBridges publishing each tick's events in (time, board, arrival) order
    (with 1 s ticks a board sends several events per route per tick, so the order shows)."""
    m = fs.fleet_manifest(step_us)
    graph = fs.host_graph(m)
    fleet = sim.fleet(m, BOARDS, seeds=[11, 23, 37, 41], partition=fs.DEVICE, graph=graph, step_us=step_us)
    fleet.run(SECONDS)
    spec, seeds = partition_spec(m, fs.DEVICE), (11, 23, 37, 41)
    images, sessions = [seeded_spec(spec, s).encode() for s in seeds], [session_for(s) for s in seeds]
    assert [fleet.image(i) for i in range(BOARDS)] == images, "the fleet reseeds the image as the spec would be"
    assert [fleet.session(i) for i in range(BOARDS)] == sessions
    oracle, oracle_graph = reference(images, sessions, step_us)
    oracle.run(SECONDS)
    assert fleet.now_us == oracle.now_us == SECONDS * 1_000_000
    ours, theirs = graph_digest(graph), graph_digest(oracle_graph)
    assert sum(n for n, _ in ours["routes"].values()) > 0
    assert ours == theirs
