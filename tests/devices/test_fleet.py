"""manyfold.sim.fleet: N boards in lockstep on one virtual clock, each behind its own link, with
seeded faults (issue 17)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from manyfold import sim
from manyfold.devices.greenhouse import greenhouse_spec
from manyfold.devices.image import ValueKind
from manyfold.graph import BOOL, FLOAT, INT, Graph

SPEC = greenhouse_spec()
BOARD = "lm3s6965evb"


def event_key(e) -> tuple:
    """Everything an event carries, the value by its bits."""
    value = struct.pack("<d", e.value) if isinstance(e.value, float) else repr(e.value).encode()
    return (e.route, e.seq, e.time_us, e.epoch, e.taints, e.lineage.route, e.lineage.first_seq, e.lineage.count, value)


def host_graph() -> Graph:
    g = Graph()
    kinds = {ValueKind.FLOAT: FLOAT, ValueKind.INT: INT, ValueKind.BOOL: BOOL}
    for r in SPEC.routes:
        if r.name in SPEC.to_host:
            g.route(r.name, kinds[r.kind])
    return g


def digest(f: sim.Fleet) -> str:
    h = hashlib.sha256()
    for i in range(f.count):
        for e in f.events(i):
            h.update(repr(event_key(e)).encode())
        b = f.boards[i]
        h.update(repr((b.host, b.device_time_us, b.resets, b.bytes_dropped, b.bytes_corrupted, b.taint_bits)).encode())
    return h.hexdigest()


def test_fleet_boards_equal_lone_sim_boards_under_skew():
    """(a) Without faults but with skew, each board's events equal a lone sim.open board of the same image and session stepped to the same targets."""
    step_us, ticks = 100_000, 40
    f = sim.fleet(SPEC, 4, seeds=[1, 2, 3, 40], board=BOARD, faults=sim.FleetFaults(seed=5, skew_ppm=3000), step_us=step_us, record=range(4))
    f.run_to(step_us * ticks)
    skews = [f.boards[i].skew_ppm for i in range(4)]
    assert len(set(skews)) > 1 and any(skews)
    for i in range(4):
        lone = sim.open(f.image(i), board=BOARD, session=f.session(i))
        lone.connect(lockstep=True, reset=True)
        expected = []
        for k in range(1, ticks + 1):
            expected += lone.step(sim.skewed_us(k * step_us, skews[i]))
        got = [event_key(e) for e in f.events(i)]
        assert got == [event_key(e) for e in expected], f"board {i}"
        assert len(got) >= 15
        assert f.boards[i].device_time_us == sim.skewed_us(ticks * step_us, skews[i])


def test_seeds_list_matches_greenhouse_spec_seed():
    """seeds=[s] runs greenhouse_spec(seed=s): board 0's image loads the same sources (only the manifest id differs)."""
    f = sim.fleet(SPEC, 1, seeds=[5], board=BOARD, record=(0,))
    lone = sim.open(greenhouse_spec(5).encode(), board=BOARD, session=f.session(0))
    lone.connect(lockstep=True, reset=True)
    f.run_to(3_000_000)
    expected = []
    for k in range(1, 31):
        expected += lone.step(k * 100_000)
    assert [event_key(e) for e in f.events(0)] == [event_key(e) for e in expected]


FAULTS = sim.FleetFaults(seed=9, drop=0.002, corrupt=0.002, resets_per_hour=600, skew_ppm=500)


def test_same_seeds_same_digest_other_seed_differs():
    """(c) The same seeds and faults give the same digest of events and counters; another fault seed gives another."""
    runs = []
    for faults in (FAULTS, FAULTS, sim.FleetFaults(**{**FAULTS.__dict__, "seed": 10})):
        f = sim.fleet(SPEC, 5, seeds=7, board=BOARD, faults=faults, record=range(5))
        f.run(20)
        runs.append(digest(f))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_each_fault_shows():
    """(d) Drops and corruption show as frame errors, gaps and delivery_dropped; reboots as new sessions; skew as ppm·t of drift."""
    seconds = 30
    t_us = seconds * 1_000_000
    drops = sim.fleet(SPEC, 3, board=BOARD, faults=sim.FleetFaults(seed=1, drop=0.002)).run(seconds)
    assert drops.bytes_dropped > 0 and drops.rx_gaps > 0 and drops.frame_errors > 0
    assert drops.taints.get("delivery_dropped") == 3
    corrupt = sim.fleet(SPEC, 3, board=BOARD, faults=sim.FleetFaults(seed=1, corrupt=0.002)).run(seconds)
    assert corrupt.bytes_corrupted > 0 and corrupt.frame_errors > 0 and corrupt.bytes_dropped == 0
    resets = sim.fleet(SPEC, 3, board=BOARD, faults=sim.FleetFaults(seed=1, resets_per_hour=720))
    resets.run(seconds)
    for b in resets.boards:
        assert b.resets >= 1, b
        assert b.host.sessions == 1 + b.rehellos >= 2, b
        assert b.ready and b.device_time_us == t_us
    skew = sim.fleet(SPEC, 3, board=BOARD, faults=[sim.FleetFaults(skew_ppm=0), sim.FleetFaults(seed=3, skew_ppm=2000), sim.FleetFaults(seed=4, skew_ppm=2000)])
    skew.run(seconds)
    for b in skew.boards:
        assert abs((b.device_time_us - t_us) - t_us * b.skew_ppm / 1e6) < 1, b
    assert skew.boards[0].skew_ppm == 0 and skew.boards[1].skew_ppm != 0
    clean = sim.fleet(SPEC, 2, board=BOARD).run(seconds)
    assert (clean.bytes_dropped, clean.frame_errors, clean.rx_gaps, clean.resets, clean.taints.get("delivery_dropped")) == (0, 0, 0, 0, None)


def test_events_are_published_into_the_graph_per_board():
    """Each tick's events go into the host graph as producer greenhouse#i, and the graph clock follows the fleet."""
    g = host_graph()
    f = sim.fleet(SPEC, 3, board=BOARD, graph=g, record=range(3))
    report = f.run(5)
    to_host = {SPEC.route_index(n) for n in SPEC.to_host}
    expected = sum(1 for i in range(3) for e in f.events(i) if e.route in to_host)
    assert report.events_published == expected > 0 and report.events_refused == 0
    assert g.now_us == 5_000_000
    producers = {e.producer for r in g.routes for e in g.replay(r)}
    assert producers == {("producer", f"greenhouse#{i}") for i in range(3)}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"count": 0}, "count must be an integer of at least 1"),
        ({"board": "pdp11"}, "unknown board 'pdp11'"),
        ({"seeds": [1, 2]}, "seeds has 2 entries for 3 boards"),
        ({"record": (3,)}, "cannot record board 3"),
        ({"faults": sim.FleetFaults(drop=1.5)}, "the drop probability must be between 0 and 1"),
        ({"faults": [sim.FleetFaults()]}, "faults must be one FleetFaults or a list of 3"),
        ({"step_us": 0}, "step_us must be an integer of at least 1"),
        ({"graph": Graph()}, "the host graph has no route"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(kwargs, message):
    """Bad arguments raise FleetError with a one-sentence message."""
    args = {"count": 3, **kwargs}
    count = args.pop("count")
    with pytest.raises(sim.FleetError, match=message):
        sim.fleet(SPEC, count, board=args.pop("board", BOARD), **args)


def test_bad_calls_are_refused():
    """Unknown boards, unrecorded boards, running backwards and a bare image with a graph are refused."""
    f = sim.fleet(SPEC, 2, board=BOARD, record=(0,))
    f.run(1)
    with pytest.raises(sim.FleetError, match="no board 2"):
        f.image(2)
    with pytest.raises(sim.FleetError, match="board 1 is not recorded"):
        f.events(1)
    with pytest.raises(sim.FleetError, match="cannot run back"):
        f.run_to(0)
    with pytest.raises(sim.FleetError, match="an image alone does not name"):
        sim.fleet(SPEC.encode(), 2, board=BOARD, graph=host_graph())
    with pytest.raises(sim.FleetError, match="runs a partition image"):
        sim.fleet("greenhouse", 2)
