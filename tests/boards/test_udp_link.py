"""The UDP link of mps2-an386 under QEMU (its `udp` build: LAN9118 + smoltcp, datagram frames):
handshake and queries over `udp://`, lockstep traces byte-identical with manyfold.sim, the
seeded datagram fault wrapper between host and board, one session per host address, and a
board restart."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import oracle_v11
import pytest
from conftest import BOOT_TIMEOUT_S, REPLY_TIMEOUT_S
from test_qemu_link import _trace
from unframe import unframe

import manyfold.sim as sim
from manyfold import _native
from manyfold.devices import greenhouse as gh
from manyfold.devices import protocol as m
from manyfold.devices import qemu, queries
from manyfold.devices.boards import BoardError
from manyfold.devices.link import LinkClient, Timers
from manyfold.framing import encode_datagram

BOARD = "mps2-an386"
SPEC = gh.greenhouse_spec()
IMAGE = SPEC.encode()


@pytest.fixture(scope="session")
def udp_elf(toolchain) -> Path:
    """The board's UDP build, built once per session."""
    try:
        return qemu.build_firmware(BOARD, link="udp")
    except BoardError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def run_udp_board(udp_elf, tmp_path):
    """``with run_udp_board(image) as b:`` boots the UDP build in QEMU (``b.url`` is
    ``udp://127.0.0.1:PORT``); ``udp_port`` forwards a chosen port."""

    def start(image: bytes | None = IMAGE, udp_port: int | None = None) -> qemu.RunningBoard:
        try:
            return qemu.start_board(
                BOARD, udp_elf, image, log=tmp_path / "qemu.log", boot_timeout_s=BOOT_TIMEOUT_S,
                reply_timeout_s=REPLY_TIMEOUT_S, link="udp", udp_port=udp_port,
            )  # fmt: skip
        except BoardError as error:
            pytest.fail(str(error), pytrace=False)

    return start


def test_handshake_and_queries_over_udp(run_udp_board):
    """Over udp://, the board describes its image and answers every query (typed, by name) as
    it does over its UART; a query's round trip is well under a millisecond's budget of 50 ms."""
    with run_udp_board() as b:
        assert b.url.startswith("udp://127.0.0.1:") and b.link == "udp"
        c = b.client(session=3)
        d = c.connect(lockstep=True, reset=True)
        assert (d.board, d.partition, d.manifest_id, d.protocol) == (BOARD, "greenhouse-sensors", SPEC.image_id(), "1.1")
        events = c.step(3_000_000)
        topology = queries.topology(c)
        assert [r.id for r in topology.routes] == [r.id for r in c.routes()] and len(topology.routes) == len(SPEC.routes)
        latest = queries.latest(c, gh.Z1_TEMP_AVG)
        assert latest.event == [e for e in events if e.route == SPEC.route_index(gh.Z1_TEMP_AVG)][-1]
        board = c.board()
        assert board.lockstep and board.time_us == 3_000_000 and board.rx_dropped == 0
        start = time.monotonic()
        for _ in range(20):
            c.board()
        assert (time.monotonic() - start) / 20 < 0.05
        counters = c.counters
        assert (counters.frame_errors, counters.rx_gaps, counters.retries) == (0, 0, 0)


def test_lockstep_trace_over_udp_is_byte_identical_to_the_simulation(run_udp_board):
    """The lockstep trace of the serial tests (steps, fan writes, every query, nacked requests),
    run over UDP, gives the same messages as manyfold.sim emulating the same board, byte for byte."""
    with run_udp_board() as b:
        c = b.client(session=6, record=True)
        c.connect(lockstep=True, reset=True)
        c.run_trace(_trace())
        on_board = c.transcript
    s = sim.open(IMAGE, board=BOARD, session=6, record=True)
    s.connect(lockstep=True, reset=True)
    s.run_trace(_trace())
    assert len(on_board) > 50
    kinds = {oracle_v11.kind_of(unframe(f)) for f in on_board}
    assert {m.Kind.DESCRIBE, m.Kind.EVENT, m.Kind.ACK, m.Kind.NACK, m.Kind.REPLY} <= kinds
    assert on_board == s.transcript


def _key(e: m.Event) -> tuple:
    return (e.route, e.seq, e.time_us, e.epoch, (e.lineage.route, e.lineage.first_seq, e.lineage.count), e.value)


def _drive(client) -> list[m.Event]:
    events: list[m.Event] = []
    for t in range(250_000, 12_000_001, 250_000):
        events += client.step(t)
        if t in (2_000_000, 7_500_000):
            client.send_event(gh.FAN_DESIRED, 40.0 if t < 5_000_000 else 20.0, time_us=t)
    return events + client.events()


def test_datagram_faults_never_pass_and_every_loss_is_counted(run_udp_board):
    """The seeded datagram fault wrapper (drop, duplicate, reorder, corrupt) both ways between
    host and board: every event the host accepted is the one manyfold.sim sends for the same
    trace (no damaged value, time or lineage), none twice; damaged datagrams are refused and
    counted by the end that got them; every route that lost an event says delivery_dropped on
    its next one; the link recovers by resending, without reconnecting."""
    faults = "seed={},drop=0.05,dup=0.05,reorder=0.05,corrupt=0.05"
    with run_udp_board() as b:
        port = _native.UdpPort(b.url, 0.02, faults.format(7), faults.format(8))
        c = LinkClient(port, session=21, timers=Timers(reply_timeout_s=0.3, retries=10))
        c.connect(lockstep=True, reset=True, timeout_s=15)
        events = _drive(c)
        device = c.counters_device()
        damage = port.fault_counts
        c.close()
    host = c.counters
    for direction in ("to_board", "to_host"):
        assert all(damage[direction][k] > 0 for k in ("dropped", "duplicated", "reordered", "corrupted")), damage
    s = sim.open(IMAGE, board=BOARD, session=21)
    s.connect(lockstep=True, reset=True)
    reference = {(e.route, e.seq): e for e in _drive(s)}
    assert len({(e.route, e.seq) for e in events}) == len(events), "no event twice"
    assert all(_key(e) == _key(reference[(e.route, e.seq)]) for e in events), "every accepted event is one the board sent"
    assert len(events) < len(reference), "the faults lost some events"
    assert host.reconnects == 0 and host.retries > 0
    assert host.frame_errors > 0, "damaged datagrams from the board were refused and counted"
    assert device.frame_crc_errors + device.frame_short + device.frame_oversize > 0, "and those to the board"
    assert host.rx_gaps + host.events_undecodable > 0 and host.events_duplicate > 0, "losses and copies were counted"
    last: dict[int, int] = {}
    for e in events:
        want = reference[(e.route, e.seq)].taints
        if last.get(e.route, 0) != e.seq - 1:
            assert m.DELIVERY_DROPPED & e.taints, f"the event after a loss says so: {e}"
        else:
            assert e.taints & ~m.DELIVERY_DROPPED == want & ~m.DELIVERY_DROPPED
        last[e.route] = e.seq


def test_one_session_per_host_address(run_udp_board):
    """The board serves the address that said hello: a request from another address is dropped
    and counted (rx_dropped); a hello from it moves the session there, and the first host's next
    request goes unanswered."""
    with run_udp_board() as b:
        first = b.client(session=41, timers=Timers(reply_timeout_s=1.0, retries=0, reconnect_timeout_s=1.0))
        first.connect(lockstep=True, reset=True)
        host, port = b.url.removeprefix("udp://").rsplit(":", 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.settimeout(0.5)
            stranger.sendto(encode_datagram(bytes.fromhex("e6 01 07 00")), (host, int(port)))  # a board query
            with pytest.raises(TimeoutError):
                stranger.recv(512)
        assert first.board().rx_dropped == 1
        second = b.client(session=42)
        d = second.connect(lockstep=True, reset=True)
        assert (d.session, d.reset) == (42, True)
        assert second.board().rx_dropped == 1
        second.close()


def test_board_restart_gives_a_new_session_that_the_client_resumes(run_udp_board, tmp_path):
    """The board restarts (QEMU killed and booted again on the same UDP port): the client
    notices the silence, says hello again with its session, and the fresh board takes it as a
    new session; events flow again, and the gap shows as delivery_dropped."""
    watched = SPEC.route_index(gh.Z1_TEMP_AVG)
    b = run_udp_board()
    udp_port = int(b.url.rsplit(":", 1)[1])
    try:
        c = LinkClient.open(b.url, session=51, timers=Timers(stale_s=1.0, down_s=2.0, reply_timeout_s=2.0, reconnect_timeout_s=30.0))
        c.connect()
        events: list[m.Event] = []
        deadline = time.monotonic() + 10
        while sum(e.route == watched for e in events) < 3 and time.monotonic() < deadline:
            events += c.poll(0.2)
        assert sum(e.route == watched for e in events) >= 3
        b.stop()
        b = run_udp_board(udp_port=udp_port)
        after: list[m.Event] = []
        deadline = time.monotonic() + 30
        while not (c.counters.resumes and sum(e.route == watched for e in after) >= 2) and time.monotonic() < deadline:
            after += c.poll(0.2)
        assert c.counters.reconnects >= 1 and c.counters.resumes >= 1
        assert c.describe.session == 51
        device = c.counters_device()
        assert device.sessions == 1 and device.resumes == 0, "the fresh board saw a new session"
        fresh = [e for e in after if e.route == watched]
        assert fresh and "delivery_dropped" in fresh[0].taint_names
        c.close()
    finally:
        b.stop()


def test_an_edge_node_owns_the_udp_board(udp_elf):
    """The edge greenhouse with its sensor partition on the UDP board: node A owns the device by
    its udp:// address, the board's events reach node A's graph (seq numbers moving, the link's
    taints added) and the fan command comes back down, as with a serial board."""
    from manyfold.demos.edge import run_edge_demo

    report = run_edge_demo(board=BOARD, link="udp").to_dict()
    (device,) = report["devices"]
    assert device["node"] == "edge-a" and device["port"].startswith("udp://127.0.0.1:")
    assert device["uplinks"] and all(u["seq"] > 0 for u in device["uplinks"])
    assert all({"trust_unverified", "det_nonreplayable"} <= set(u["taints"]) for u in device["uplinks"])
    assert report["fan_command"] is not None and report["stopped"] == {"edge-a": 0, "edge-b": 0, "host": 0}
