"""The link protocol with the firmware under QEMU, on both emulated boards: handshake, queries,
nacks, free-running sources, recovery after the cable comes back, and lockstep runs that are
byte-identical to manyfold.sim."""

from __future__ import annotations

import time

import oracle_v11
import pytest
from conftest import BOARDS
from unframe import unframe

import manyfold.sim as sim
from manyfold.devices import greenhouse as gh
from manyfold.devices import protocol as m
from manyfold.devices.image import route_id
from manyfold.devices.link import NackError, Timers
from manyfold.framing import encode_frame

SPEC = gh.greenhouse_spec()
IMAGE = SPEC.encode()


def test_handshake_shows_the_loaded_image(board, run_board, descriptor):
    """The describe names the board and the image in its partition region (manifest id,
    partition), and says what the firmware can do."""
    with run_board(IMAGE) as b:
        d = b.client(session=11).connect(lockstep=True, reset=True)
    assert (d.board, d.max_message, d.version, d.protocol) == (board, descriptor["max_message"], 2, "1.1")
    assert (d.image_status_name, d.partition) == ("loaded", "greenhouse-sensors")
    assert d.manifest_id == SPEC.image_id()
    assert d.capabilities & m.CAP_LOCKSTEP and d.capabilities & m.CAP_SOURCES
    assert not d.capabilities & m.CAP_UPLOAD, "the firmware's partition region is read-only"
    assert (d.session, d.lockstep, d.reset) == (11, True, True)


def test_empty_region_is_described_not_crashed(run_board):
    """Booted with nothing in its partition region, the board still answers: the describe says
    why nothing runs, and events are refused."""
    with run_board(None) as b:
        c = b.client(session=1)
        d = c.connect()
        assert (d.image_status_name, d.manifest_id, d.partition) == ("header_empty", None, "")
        with pytest.raises(NackError) as error:
            c.send_event(0, 1.0)
        assert error.value.reason == m.NackReason.NO_IMAGE
        assert c.routes() == []


def test_queries_show_topology_counters_and_latest(run_board):
    """Queries answer with the partition's routes (by id), nodes, sources, mailbox flow,
    counters and the latest event of a route."""
    with run_board(IMAGE) as b:
        c = b.client(session=2)
        c.connect(lockstep=True, reset=True)
        events = c.step(3_000_000)
        assert [r.id for r in c.routes()] == [route_id(r.name) for r in SPEC.routes]
        assert [n.op for n in c.nodes()] == [2, 3, 0, 2, 4, 1, 5, 7]
        assert [s.route for s in c.sources()] == [SPEC.route_index(s.route) for s in SPEC.sources]
        assert all(f.dropped == 0 for f in c.flow())
        counters = c.counters_device()
        assert counters.steps == 1 and counters.events_out == len(events) and counters.frame_crc_errors == 0
        latest = c.latest(gh.Z1_TEMP_AVG)
        assert latest == [e for e in events if e.route == SPEC.route_index(gh.Z1_TEMP_AVG)][-1]
        board = c.board()
        assert board.lockstep and board.time_us == 3_000_000 and board.rx_dropped == 0


def test_refused_frames_and_messages_get_nacks(run_board):
    """A corrupted frame, an oversize frame, an unknown kind and a kind only devices send each
    get a nack, and the link goes on."""
    corrupted = bytearray(encode_frame(oracle_v11.encode_host(50, oracle_v11.Heartbeat(0x1111_1111)), 256))
    corrupted[4] ^= 0x01
    cases = [
        (bytes(corrupted), (None, m.NackReason.FRAME_BAD_CRC)),
        (bytes([7]) * 300 + b"\x00", (None, m.NackReason.FRAME_OVERSIZE)),
        (encode_frame(bytes.fromhex("8218631832"), 256), (50, m.NackReason.DECODE_UNKNOWN_KIND)),  # [kind 99, id 50]
        (encode_frame(bytes.fromhex("e43300"), 256), (51, m.NackReason.KIND_UNEXPECTED)),  # an ack, id 51
    ]
    with run_board(IMAGE) as b:
        c = b.client(session=3, record=True)
        c.connect(lockstep=True, reset=True)
        for frame, expected in cases:
            # One at a time, as a host does: a burst larger than the board's receive ring
            # would lose bytes (counted as rx_dropped).
            seen = len(c.transcript)
            c.port.write(frame)
            deadline = time.monotonic() + 10
            while len(c.transcript) == seen and time.monotonic() < deadline:
                c.poll(0.05)
            (nack,) = oracle_v11.decode_device(unframe(c.transcript[seen]), oracle_v11.Refs())
            assert (nack.body.ref, nack.body.reason) == expected
        counters = c.counters_device()
        assert (counters.frame_crc_errors, counters.frame_oversize, counters.nacks_tx) == (1, 1, 4)
        assert c.board().rx_dropped == 0


def test_free_running_sources_follow_the_board_clock(run_board):
    """Free-running, the board's sources run under SysTick: seeded events arrive in order, and
    the board's clock moves."""
    with run_board(IMAGE) as b:
        c = b.client(session=4)
        c.connect()
        events = []
        deadline = time.monotonic() + 10
        while len([e for e in events if e.route == SPEC.route_index(gh.Z1_TEMP_AVG)]) < 6 and time.monotonic() < deadline:
            events += c.poll(0.2)
        avg = [e for e in events if e.route == SPEC.route_index(gh.Z1_TEMP_AVG)]
        assert len(avg) >= 6
        assert [e.seq for e in avg] == list(range(avg[0].seq, avg[0].seq + len(avg)))
        times = [e.time_us for e in avg]
        assert {b - a for a, b in zip(times, times[1:])} == {250_000}, "one value per source period, at exact times"
        assert all("det_seeded_entropy" in e.taint_names for e in avg)
        assert not c.board().lockstep


def test_link_recovers_after_the_cable_comes_back(run_board):
    """The host's connection drops for 5 s: the board goes stale and counts the events it could
    not send; the client reconnects and resumes the session by itself, and on each route the
    first event after the gap in its seqs says delivery_dropped (events the board sent before it
    noticed, which QEMU may still hand over after the reconnect, were not lost and say nothing)."""
    with run_board(IMAGE) as b:
        timers = Timers(stale_s=2.0, down_s=3.0, reply_timeout_s=5.0)
        c = b.client(session=5, timers=timers)
        c.connect()
        before = c.poll(1.0)
        c.port.close()  # the cable is pulled: the board's output goes nowhere
        time.sleep(5.0)
        later = c.poll(2.0)  # the client notices the dead port and reconnects by itself
        assert (c.counters.reconnects, c.counters.resumes) == (1, 1)
        last = {e.route: e.seq for e in before}
        after_gap = {}
        for e in later:
            if e.route in last and e.seq != last[e.route] + 1:
                after_gap.setdefault(e.route, e)
            last[e.route] = e.seq
        assert after_gap, "the routes lost events while the cable was out"
        assert all("delivery_dropped" in e.taint_names for e in after_gap.values()), after_gap
        counters = c.counters_device()
        assert counters.stale >= 1 and counters.resumes == 1 and counters.events_unsent > 0


def _trace() -> list:
    """A lockstep trace over the greenhouse partition: steps, fan writes, queries (not the board
    query: uptime and stack peak are the board's own)."""
    trace: list = []
    q = lambda kind, arg=0: m.Query(int(kind), arg)  # noqa: E731
    for t in range(250_000, 6_000_001, 250_000):
        trace.append(m.Step(t))
        if t == 2_000_000:
            trace.append(m.Event(SPEC.route_index(gh.FAN_DESIRED), 1, t, 0, 0, m.Lineage(), 40.0))
        if t == 2_100_000 or t == 3_000_000:
            trace.append(m.Event(SPEC.route_index(gh.FAN_DESIRED), 2 if t < 3_000_000 else 3, t, 0, 0, m.Lineage(), 80.0))
        if t == 4_000_000:
            # The route table: from here on the board's events go in short form.
            trace += [q(m.QueryKind.ROUTES, 0), q(m.QueryKind.ROUTES, 8)]
    trace += [
        m.Step(15_000_000),
        q(m.QueryKind.NODES),
        q(m.QueryKind.SOURCES),
        q(m.QueryKind.COUNTERS),
        q(m.QueryKind.FLOW),
        q(m.QueryKind.TAINTS),
        q(m.QueryKind.LATEST, SPEC.route_index(gh.Z1_HOT)),
        q(m.QueryKind.LATEST, 99),  # nacked: an answer like any other
        m.Event(SPEC.route_index(gh.Z1_HOT), 1, 0, 0, 0, m.Lineage(), 1.0),  # nacked
        m.Heartbeat(),
        m.Step(20_000_000),
        # The device may heartbeat right after a long step (its link clock is lockstep time):
        # a last answered message makes the end of the transcript the same however the
        # board's frames are cut into reads.
        m.Query(m.QueryKind.COUNTERS, 0),
    ]
    return trace


@pytest.mark.parametrize("board", [*BOARDS, "nucleo-f401re"])
def test_lockstep_trace_is_byte_identical_to_the_simulation(board, run_board):
    """The same input trace, run on the emulated board in lockstep and in manyfold.sim
    emulating the same board, produces byte-identical output frames (the Nucleo's STM32 build
    runs on its QEMU stand-in)."""
    with run_board(IMAGE) as b:
        c = b.client(session=6, record=True)
        c.connect(lockstep=True, reset=True)
        c.run_trace(_trace())
        on_board = c.transcript
    s = sim.open(IMAGE, board=board, session=6, record=True)
    s.connect(lockstep=True, reset=True)
    s.run_trace(_trace())
    assert len(on_board) > 50
    kinds = {oracle_v11.kind_of(unframe(f)) for f in on_board}
    assert {m.Kind.DESCRIBE, m.Kind.EVENT, m.Kind.ACK, m.Kind.NACK, m.Kind.REPLY} <= kinds
    short = [f for f in on_board if unframe(f)[0] < 0x80 and not unframe(f)[0] & 0x40]
    assert short, "the trace covers short-form events (after the route table)"
    assert on_board == s.transcript
