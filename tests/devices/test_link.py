"""The link client's keepalive and recovery, over a simulated board behind a cable the test
can cut: the link comes back with no user code, and the gap shows in counters and taints."""

from __future__ import annotations

import oracle_v11
import pytest
from unframe import unframe

import manyfold.sim as sim
from manyfold.devices import greenhouse as gh
from manyfold.devices import protocol as m
from manyfold.devices.link import FRAME_REFUSALS, LinkClient, NackError, Timers

IMAGE = gh.greenhouse_spec().encode()


class Cable:
    """A port between the client and a simulated board that can be cut (bytes in both
    directions are lost) and can lose single frames from the board."""

    def __init__(self, port: sim.SimPort) -> None:
        self.port = port
        self.cut = False
        self.drop_frames: set[int] = set()
        self.drop_next_kind: m.Kind | None = None
        """Lose the next frame from the board whose message is of this kind."""
        self.corrupt_next_write = False
        """Flip a bit in the next frame from the host."""
        self._frames_seen = 0
        self._partial = bytearray()

    def write(self, data: bytes) -> int:
        if self.corrupt_next_write and len(data) > 3:
            self.corrupt_next_write = False
            data = bytes([data[0], data[1], data[2] ^ 0x10]) + data[3:]
        if not self.cut:
            self.port.write(data)
        return len(data)

    def read(self, n: int = 1) -> bytes:
        data = self.port.read(n)
        if self.cut:
            return b""
        if not self.drop_frames and self.drop_next_kind is None:
            return data
        out = bytearray()
        for byte in data:
            self._partial.append(byte)
            if byte == 0:
                if self._frames_seen not in self.drop_frames and not self._drop_kind(bytes(self._partial)):
                    out += self._partial
                self._frames_seen += 1 if len(self._partial) > 1 else 0
                self._partial.clear()
        return bytes(out)

    def _drop_kind(self, frame: bytes) -> bool:
        if self.drop_next_kind is None or len(frame) < 2:
            return False
        if oracle_v11.kind_of(unframe(frame)) != self.drop_next_kind:
            return False
        self.drop_next_kind = None
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def client_over(cable: Cable, **kw) -> LinkClient:
    def reopen():
        cable.cut = False  # the cable is plugged back in
        return cable

    timers = Timers(heartbeat_s=1.0, stale_s=2.0, down_s=4.0, hello_retry_s=0.5, reply_timeout_s=2.0)
    client = LinkClient(cable, reopen=reopen, clock=cable.port.clock, session=99, timers=timers, **kw)
    client.wait_for_boot(timeout_s=1.0)
    return client


def test_link_recovers_after_the_cable_comes_back():
    """Free-running: the cable is cut for 5 s; the client notices the silence, reopens and
    resumes the session by itself; the board counted the stale link and the events it could
    not send, and the first events after the gap say delivery_dropped."""
    cable = Cable(sim.SimPort(IMAGE, "lm3s6965evb"))
    c = client_over(cable)
    c.connect()
    before = c.poll(1.5)
    assert before and all("delivery_dropped" not in e.taint_names for e in before)
    cut_us = cable.port.now_us()
    cable.cut = True
    later = c.poll(5.5)
    assert (c.counters.reconnects, c.counters.resumes) == (1, 1)
    assert c.state == "up"
    later += c.poll(2.0)
    after = [e for e in later if e.time_us > cut_us]
    assert after, "events flow again"
    first_per_route = {}
    for e in after:
        first_per_route.setdefault(e.route, e)
    assert all("delivery_dropped" in e.taint_names for e in first_per_route.values())
    assert any("delivery_dropped" not in e.taint_names for e in after), "a taint marks the gap, not all that follows"
    counters = c.counters_device()
    assert counters.stale == 1 and counters.resumes == 1 and counters.sessions == 1
    assert counters.events_unsent > 0


def test_lost_device_frames_are_detected():
    """A frame of events lost between the board and the host shows as a gap in the seqs of the
    routes it carried: counted, and the next event of each of those routes (only) says
    delivery_dropped."""
    reference = sim.open(IMAGE, board="mps2-an386", session=99)
    reference.connect(lockstep=True, reset=True)
    everything = reference.step(6_000_000)
    cable = Cable(sim.SimPort(IMAGE, "mps2-an386"))
    c = client_over(cable, record=True)
    c.connect(lockstep=True, reset=True)
    cable.drop_frames = {0}  # the step's first frame: a batch of events
    events = c.step(6_000_000)
    received = {(e.route, e.seq) for e in events}
    lost = [e for e in everything if (e.route, e.seq) not in received]
    assert lost and len(events) + len(lost) == len(everything)
    assert c.counters.rx_gaps >= 1
    hit = {e.route for e in lost}
    checked = 0
    for route in {e.route for e in events}:
        mine = [e for e in events if e.route == route]
        marked = [e for e in mine if "delivery_dropped" in e.taint_names]
        if route in hit and any(e.seq > max(x.seq for x in lost if x.route == route) for e in mine):
            assert marked == [mine[0]], f"route {route}: the first event after the loss says so"
            checked += 1
        else:
            assert not marked, f"route {route} lost nothing"
    assert checked, "some route lost events and carried more after the loss"


def test_trace_runs_take_nacks_as_answers():
    """run_trace sends each message and waits for its answer, nacks included; the answers are in
    the transcript."""
    c = sim.open(IMAGE, board="lm3s6965evb", session=3, record=True)
    c.connect(lockstep=True, reset=True)
    c.run_trace([m.Step(500_000), m.Query(m.QueryKind.LATEST, 99), m.Heartbeat(), m.Step(1_000_000)])
    kinds = [oracle_v11.kind_of(unframe(f)) for f in c.transcript]
    assert kinds[0] == m.Kind.DESCRIBE
    assert m.Kind.NACK in kinds and kinds.count(m.Kind.ACK) == 2


def test_a_lost_answer_is_asked_for_again():
    """A reply lost on the way: the client sends the query again, with its id (no reconnect),
    and gets the answer."""
    cable = Cable(sim.SimPort(IMAGE, "lm3s6965evb"))
    c = client_over(cable)
    c.connect(lockstep=True, reset=True)
    c.step(1_000_000)
    cable.drop_next_kind = m.Kind.REPLY
    counters = c.counters_device()
    assert counters.steps == 1 and counters.rx_gaps == 0, "a resend is not a gap in the host's ids"
    assert (c.counters.retries, c.counters.reconnects) == (1, 0)


def test_a_refused_request_frame_is_sent_again():
    """A request damaged on the way is refused by the board (a nack without a ref); the client
    sends it again, and the step is carried out once."""
    cable = Cable(sim.SimPort(IMAGE, "lm3s6965evb"))
    c = client_over(cable)
    c.connect(lockstep=True, reset=True)
    cable.corrupt_next_write = True
    events = c.step(1_000_000)
    assert events and (c.counters.retries, c.counters.nacks) == (1, 1)
    counters = c.counters_device()
    assert counters.steps == 1 and counters.nacks_tx == 1
    assert counters.frame_crc_errors + counters.frame_cobs_errors + counters.frame_short == 1


def test_an_event_whose_ack_was_lost_is_not_applied_twice():
    """The ack of a host event is lost: the client sends the event again with the same seq; the
    board refuses the copy (seq_not_increasing), which the client takes as the lost ack."""
    cable = Cable(sim.SimPort(IMAGE, "lm3s6965evb"))
    c = client_over(cable)
    c.connect(lockstep=True, reset=True)
    cable.drop_next_kind = m.Kind.ACK
    ack = c.send_event(gh.FAN_DESIRED, 40.0, time_us=0)
    assert isinstance(ack, m.Ack) and c.counters.retries == 1
    counters = c.counters_device()
    assert counters.events_in == 1 and counters.nacks_tx == 1


def test_without_retries_a_refused_frame_is_an_error():
    """With retries=0 the client reports the board's refusal of a damaged frame as a NackError."""
    cable = Cable(sim.SimPort(IMAGE, "lm3s6965evb"))
    c = client_over(cable)
    c.timers.retries = 0
    c.connect(lockstep=True, reset=True)
    cable.corrupt_next_write = True
    with pytest.raises(NackError) as error:
        c.step(1_000_000)
    assert error.value.reason in FRAME_REFUSALS and error.value.nack.ref is None
